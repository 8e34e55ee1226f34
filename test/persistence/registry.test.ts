/**
 * The representation registry drives persistence, mergePartial, the worker pool, the CLI and the
 * error messages: a representation declared by one class plus one registry entry is saved,
 * loaded, merged and named everywhere with no other change (shown here with a toy
 * representation added at run time and removed afterwards).
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
import { mergeableRepresentations } from '../../src/object/pspace/registry.js';
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

test('a new representation is one class plus one registry entry: saved, loaded, merged and listed', () => {
  const model = mlp();
  const lc = LayerCollection.fromModel(model);
  const entry: RegistryEntry = {
    name: 'PMatScalarEye',
    owns: (x) => x instanceof PMatScalarEye,
    persist: { toState: (x) => (x as unknown as PMatScalarEye).toState(), fromState: (l, s) => PMatScalarEye.fromState(l, s) as unknown as PMat },
    merge: (parts, w, l) => new PMatScalarEye(l, parts.reduce((a, m, j) => a + w[j]! * (m as unknown as PMatScalarEye).s, 0)) as unknown as PMat,
  };
  assert.ok(!saveableNames().includes('PMatScalarEye'));
  assert.throws(() => serialize(new PMatScalarEye(lc, 2) as never), (e: Error) => e instanceof PersistenceError && /cannot be saved \(supported: PMatDense, /.test(e.message));
  (REGISTRY as RegistryEntry[]).push(entry);
  try {
    assert.ok(saveableNames().includes('PMatScalarEye') && mergeableNames().includes('PMatScalarEye'));
    const loaded = deserialize(serialize(new PMatScalarEye(lc, 2.5) as never), model) as unknown as PMatScalarEye;
    assert.ok(loaded instanceof PMatScalarEye);
    assert.equal(loaded.s, 2.5);
    const merged = mergePartial([{ matrix: new PMatScalarEye(lc, 1) as never, examples: 1 }, { matrix: new PMatScalarEye(lc, 4) as never, examples: 3 }]) as unknown as PMatScalarEye;
    assert.equal(merged.s, (1 * 1 + 4 * 3) / 4, 'example-weighted mean');
  } finally {
    (REGISTRY as RegistryEntry[]).pop();
  }
  assert.ok(!saveableNames().includes('PMatScalarEye'));
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
