/**
 * Child process of atomic-save.test.ts: saves a large PMatDense (a 1,001 × 1,001 float64
 * matrix, 8 MB) to argv[2] again and again, every entry equal to the round number, printing
 * "saved <round>" after each save; the test kills it with SIGKILL at chosen moments.
 */
import { tf } from '../../src/tf.js';
import { LayerCollection, PMatDense, save } from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { bigModel } from './big-model.js';

async function main(): Promise<void> {
  await useTestBackend();
  const target = process.argv[2]!;
  const first = Number(process.argv[3] ?? 1);
  const model = bigModel();
  const lc = LayerCollection.fromModel(model);
  const d = lc.numel();
  for (let round = first; ; round++) {
    const M = new PMatDense(lc, new Float64Array(d * d).fill(round));
    await save(M, target);
    M.dispose();
    process.stdout.write(`saved ${round}\n`);
  }
}

void main().catch((e) => {
  process.stderr.write(String(e));
  process.exit(1);
});
void tf;
