/**
 * Shared-pass scheduling: several matrices of the same data (the groups of a PMatMixed) served
 * by one pass over the union of their layers.
 */
import { type BatchVisitor, type PassResult, type PassSpec, type SharedPassParticipant, passOverData } from './pass.js';

/**
 * One pass over the data for several participants (the groups of a PMatMixed): every
 * participant's visitor sees every batch of a single pass over the union of their layers, so
 * the forward and backward passes run once instead of once per group, a one-shot loader
 * (a generator, a tf.data.Dataset iterated once) serves them all, and a Monte-Carlo variant
 * samples the same labels for all. The pass starts when each participant has joined or settled.
 */
export class SharedPass {
  private readonly members: Array<{ visitor: BatchVisitor; resolve: (r: PassResult) => void; reject: (e: unknown) => void }> = [];
  private waitingFor: number;
  private started = false;

  /** `spec`: the pass over the union of the participants' layers; `participants`: how many will join or settle. */
  constructor(private readonly spec: PassSpec, participants: number) {
    this.waitingFor = participants;
  }

  participant(): SharedPassParticipant {
    let joined = false;
    return {
      join: (spec, visitor) => {
        if (joined) return passOverData({ ...spec, shared: undefined }, visitor);
        joined = true;
        return new Promise<PassResult>((resolve, reject) => {
          this.members.push({ visitor, resolve, reject });
          this.arrived();
        });
      },
      done: () => {
        if (joined) return;
        joined = true;
        this.arrived();
      },
    };
  }

  private arrived(): void {
    if (--this.waitingFor > 0 || this.started || this.members.length === 0) return;
    this.started = true;
    const members = [...this.members];
    const visitors = members.map((m) => m.visitor);
    const combined: BatchVisitor = {
      onOutputs: (g) => visitors.forEach((v) => v.onOutputs(g)),
      onBatchEnd: () => visitors.forEach((v) => v.onBatchEnd?.()),
    };
    passOverData({ ...this.spec, shared: undefined }, combined).then(
      (r) => members.forEach((m) => m.resolve(r)),
      (e: unknown) => members.forEach((m) => m.reject(e)),
    );
  }
}

