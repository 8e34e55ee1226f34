/**
 * Every public operation of every representation leaves tf.memory().numTensors and numBytes
 * where it found them once what it returned is disposed, on the wasm and the cpu backends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { FIM, PMatBlockDiag, PMatDense, PMatDiag, PMatEKFAC, PMatEKFACBlockDiag, PMatImplicit, PMatKFAC, PMatLowRank, PMatQuasiDiag, PVector, type PMat, type Representation } from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { cnn, disposeBatches, randomBatches } from '../support/models.js';

async function noLeak(what: string, f: () => unknown): Promise<void> {
  const { numTensors, numBytes } = tf.memory();
  const r = await f();
  if (r && typeof (r as { dispose?: unknown }).dispose === 'function') (r as { dispose(): void }).dispose();
  else if (r instanceof tf.Tensor) r.dispose();
  assert.equal(tf.memory().numTensors, numTensors, `${what}: numTensors`);
  assert.equal(tf.memory().numBytes, numBytes, `${what}: numBytes`);
}

for (const backend of ['wasm', 'cpu']) {
  test(`no leaks on ${backend}: FIM and every method of every representation`, async () => {
    await useTestBackend(backend);
    const model = cnn();
    const batches = randomBatches(model, 6, 3);
    const reps: Array<Representation<PMat>> = [PMatDense, PMatDiag, PMatBlockDiag, PMatLowRank, PMatKFAC, PMatEKFAC, PMatQuasiDiag, PMatEKFACBlockDiag];
    for (const rep of reps) {
      await noLeak(`${rep.representationName} FIM`, () => FIM({ model, loader: batches, representation: rep }));
      const M = (await FIM({ model, loader: batches, representation: rep })) as PMat & {
        inv?: (o: { regul: number }) => PMat;
        scale(x: number): PMat;
        add?: (o: PMat) => PMat;
        pow?: (p: number, o: { regul: number }) => PMat;
        logdet?: (o: { regul: number }) => number;
        updateDiag?: (l: unknown) => Promise<unknown>;
      };
      const v = PVector.random(M.layerCollection, 2);
      const ops: Array<[string, () => unknown]> = [
        ['trace', () => M.trace()],
        ['norm fro', () => M.norm('fro')],
        ['norm 2', () => M.norm(2)],
        ['norm -2', () => M.norm(-2)],
        ['mv', () => M.mv(v)],
        ['vTMv', () => M.vTMv(v)],
        ['getDiag', () => M.getDiag()],
        ['toTensor', () => M.toTensor()],
        ['solve', () => M.solve(v, { regul: 0.1 })],
        ['scale', () => M.scale(2)],
      ];
      if (M.add) ops.push(['add', () => M.add!(M)]);
      if (M.inv) ops.push(['inv', () => M.inv!({ regul: 0.1 })]);
      if (M.pow) ops.push(['pow', () => M.pow!(-0.5, { regul: 0.1 })]);
      if (M.logdet) ops.push(['logdet', () => M.logdet!({ regul: 0.1 })]);
      if (M.updateDiag) ops.push(['updateDiag', async () => void (await M.updateDiag!(batches))]);
      for (const [name, op] of ops) await noLeak(`${rep.representationName}.${name}`, op);
      v.dispose();
      M.dispose();
    }
    const im = await FIM({ model, loader: batches, representation: PMatImplicit });
    const v = PVector.random(im.layerCollection, 3);
    await noLeak('implicit trace', () => im.trace());
    await noLeak('implicit mv', () => im.mv(v));
    await noLeak('implicit vTMv', () => im.vTMv(v));
    await noLeak('implicit solve', () => im.solve(v, { regul: 0.1, maxIter: 5 }));
    v.dispose();
    disposeBatches(batches);
    model.dispose();
  });
}

test('an operation that throws midway releases its tensors', async () => {
  await useTestBackend('wasm');
  const model = cnn();
  const batches = randomBatches(model, 4, 2);
  // the second batch has a NaN: the pass fails after the first batch was processed
  const bad = tf.mul(batches[1]!.xs, NaN);
  const loader = [batches[0]!, { xs: bad }];
  const reps: Array<Representation<PMat>> = [PMatDense, PMatDiag, PMatBlockDiag, PMatLowRank, PMatKFAC, PMatEKFAC];
  for (const rep of reps) {
    const { numTensors } = tf.memory();
    await assert.rejects(() => FIM({ model, loader, representation: rep }), /NaN/);
    assert.equal(tf.memory().numTensors, numTensors, `${rep.representationName}`);
  }
  bad.dispose();
  disposeBatches(batches);
  model.dispose();
});
