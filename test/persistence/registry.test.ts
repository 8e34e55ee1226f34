/**
 * The representation registry drives persistence, mergePartial, the worker pool, the CLI and the
 * error messages: a representation declared by one class plus one registry entry is saved,
 * loaded, merged, measured (the CLI's storage tables), offered to the worker pool and its
 * threads, and named everywhere with no other change (shown here with a toy representation added
 * at run time and removed afterwards; a real worker thread does not see an entry added at run
 * time in this thread, so the threads' lookup, `threadRepresentation`, is checked directly).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import {
  FIM,
  LayerCollection,
  PMatEKFAC,
  PMatImplicit,
  PMatKFAC,
  PVector,
  PersistenceError,
  REGISTRY,
  deserialize,
  mergePartial,
  mergeableNames,
  saveableNames,
  serialize,
  type PMat,
  type RegistryEntry,
  type RepresentationState,
} from '../../src/index.js';
import { mergeableRepresentations, threadRepresentation } from '../../src/object/pspace/registry.js';
import { storageBytes } from '../../src/cli/storage.js';
import { REPRESENTATIONS, findRepresentation } from '../../src/cli/representations.js';
import { useTestBackend } from '../support/backend.js';
import { mlp } from '../support/models.js';

before(async () => {
  await useTestBackend();
});

/** A toy representation: s·I, stored as one number (the recipe of docs/architecture.md). */
class PMatScalarEye {
  static readonly representationName = 'PMatScalarEye';
  constructor(
    readonly layerCollection: LayerCollection,
    readonly s: number,
  ) {}
  toState(): RepresentationState {
    return { meta: { s: this.s }, arrays: {} };
  }
  static fromState(lc: LayerCollection, state: RepresentationState): PMatScalarEye {
    if (typeof state.meta.s !== 'number') throw new Error(`'s' must be a number`);
    return new PMatScalarEye(lc, state.meta.s);
  }
  trace(): number {
    return this.s * this.layerCollection.numel();
  }
  dispose(): void {}
}

/** What FIM would take for the toy: s = 1.5. */
const toyRepresentation = {
  representationName: 'PMatScalarEye',
  compute: async (spec: { layerCollection: LayerCollection }) => new PMatScalarEye(spec.layerCollection, 1.5) as unknown as PMat,
};

test('a new representation is one class plus one registry entry: saved, loaded, merged, measured, split across threads and listed', () => {
  const model = mlp();
  const lc = LayerCollection.fromModel(model);
  const entry: RegistryEntry = {
    name: 'PMatScalarEye',
    owns: (x) => x instanceof PMatScalarEye,
    persist: { toState: (x) => (x as unknown as PMatScalarEye).toState(), fromState: (l, s) => PMatScalarEye.fromState(l, s) as unknown as PMat },
    merge: (parts, w, l) => new PMatScalarEye(l, parts.reduce((a, m, j) => a + w[j]! * (m as unknown as PMatScalarEye).s, 0)) as unknown as PMat,
    representation: toyRepresentation,
    storedBytes: () => 8,
  };
  const toy = new PMatScalarEye(lc, 2) as never;
  assert.ok(!saveableNames().includes('PMatScalarEye'));
  assert.equal(storageBytes(toy), null, 'unknown before its entry');
  assert.equal(threadRepresentation('PMatScalarEye'), undefined);
  assert.throws(() => serialize(new PMatScalarEye(lc, 2) as never), (e: Error) => e instanceof PersistenceError && /cannot be saved \(supported: PMatDense, /.test(e.message));
  (REGISTRY as RegistryEntry[]).push(entry);
  try {
    assert.ok(saveableNames().includes('PMatScalarEye') && mergeableNames().includes('PMatScalarEye'));
    assert.equal(storageBytes(toy), 8, 'the CLI measures it through its entry');
    assert.ok(mergeableRepresentations().includes(toyRepresentation), 'the worker pool may split it');
    assert.equal(threadRepresentation('PMatScalarEye'), toyRepresentation, 'a worker thread computes it by name');
    const loaded = deserialize(serialize(new PMatScalarEye(lc, 2.5) as never), model) as unknown as PMatScalarEye;
    assert.ok(loaded instanceof PMatScalarEye);
    assert.equal(loaded.s, 2.5);
    const merged = mergePartial([{ matrix: new PMatScalarEye(lc, 1) as never, examples: 1 }, { matrix: new PMatScalarEye(lc, 4) as never, examples: 3 }]) as unknown as PMatScalarEye;
    assert.equal(merged.s, (1 * 1 + 4 * 3) / 4, 'example-weighted mean');
  } finally {
    (REGISTRY as RegistryEntry[]).pop();
  }
  assert.ok(!saveableNames().includes('PMatScalarEye'));
  assert.equal(storageBytes(toy), null);
  model.dispose();
});

test('the CLI, the worker pool and the error messages list exactly the registry', async () => {
  assert.deepEqual(REPRESENTATIONS.map((r) => r.name), REGISTRY.flatMap((e) => (e.cli ? [e.cli.name] : [])));
  assert.deepEqual(REPRESENTATIONS.map((r) => r.name), ['dense', 'blockdiag', 'diag', 'lowrank', 'kfac', 'ekfac', 'quasidiag', 'ekfac-blockdiag', 'implicit']);
  assert.equal(findRepresentation('PMatKFAC').name, 'kfac');
  const names = new Set(REGISTRY.map((e) => e.name));
  assert.equal(names.size, REGISTRY.length, 'names are unique');
  // Threads split what merges directly or through another representation (EKFAC through KFAC factors).
  const threads = mergeableRepresentations();
  assert.ok(threads.includes(PMatKFAC) && threads.includes(PMatEKFAC) && !threads.includes(PMatImplicit));
  // A thread computes what merges directly: EKFAC's shares arrive as PMatKFAC; Implicit and EKFAC itself never.
  for (const e of REGISTRY) assert.equal(threadRepresentation(e.name), e.representation && e.merge ? e.representation : undefined, e.name);
  assert.equal(threadRepresentation('PMatKFAC'), PMatKFAC);
  assert.equal(threadRepresentation('PMatEKFAC'), undefined);
  assert.deepEqual(mergeableNames(), ['PMatDense', 'PMatBlockDiag', 'PMatDiag', 'PMatLowRank', 'PMatKFAC', 'PMatQuasiDiag', 'PMatMixed']);
  assert.deepEqual(saveableNames(), ['PMatDense', 'PMatBlockDiag', 'PMatDiag', 'PMatLowRank', 'PMatKFAC', 'PMatEKFAC', 'PMatQuasiDiag', 'PMatMixed', 'PMatEye', 'PVector']);
  const model = mlp();
  const x = tf.zeros([1, 5]);
  const v = PVector.fromModel(model);
  const n0 = tf.memory().numTensors;
  await assert.rejects(
    () => FIM({ model, loader: [x], representation: 'PMatDense' as never }),
    (e: Error) => REGISTRY.filter((r) => r.representation).every((r) => e.message.includes(r.name)),
  );
  assert.throws(() => mergePartial([{ matrix: v as never, examples: 1 }]), (e: Error) => mergeableNames().every((n) => e.message.includes(n)));
  assert.equal(tf.memory().numTensors, n0);
  [x, v].forEach((t) => t.dispose());
  model.dispose();
});
