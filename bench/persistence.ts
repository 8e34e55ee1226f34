/**
 * Cost of the saved-file format, median of 5 runs:
 * - a PMatDense of d = 2,001 (32 MB of float64): serialize, deserialize, and the CRC-32C alone;
 * - the partials a distributed merge decodes, PMatDiag (5.1 MB) and PMatKFAC (12.7 MB) of the
 *   bench MLP 784-512-512-10: the CRC-32C, `decode` (checks, checksum, copies, finiteness) and
 *   `deserialize` (decode and the representation rebuilt on the model).
 * Run: node --import tsx bench/persistence.ts
 */
import { tf } from '../src/tf.js';
import { LayerCollection, PMatDense, PMatDiag, PMatKFAC, deserialize, serialize } from '../src/index.js';
import { crc32c } from '../src/persistence/crc32c.js';
import { decode } from '../src/persistence/format.js';
import { mlp } from './workloads.js';

const median = (f: () => void) => {
  const t: number[] = [];
  for (let k = 0; k < 5; k++) {
    const t0 = performance.now();
    f();
    t.push(performance.now() - t0);
  }
  return +t.sort((a, b) => a - b)[2]!.toFixed(1);
};

function dense(): void {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [2000] })] });
  const lc = LayerCollection.fromModel(model);
  const d = lc.numel();
  const values = Float64Array.from({ length: d * d }, (_, i) => Math.sin(i));
  const M = new PMatDense(lc, values);
  const bytes = serialize(M);
  const mb = bytes.length / 2 ** 20;
  const crc = median(() => crc32c(bytes));
  const ser = median(() => serialize(M));
  const de = median(() => deserialize(bytes, model).dispose());
  const copy = median(() => bytes.slice());
  console.log(JSON.stringify({ row: 'PMatDense d=2001', megabytes: +mb.toFixed(1), crc32cMs: crc, crcGBps: +(mb / 1024 / (crc / 1000)).toFixed(2), serializeMs: ser, deserializeMs: de, plainCopyMs: copy }));
  M.dispose();
  model.dispose();
}

/** The MLP's Diag and KFAC partials, with values of the right sizes (their content does not change the cost). */
function mlpPartials(): void {
  const model = mlp();
  const lc = LayerCollection.fromModel(model);
  const diag = new PMatDiag(lc, Float64Array.from({ length: lc.numel() }, (_, i) => 1 + Math.sin(i) ** 2));
  const factors = lc.layers.map((e) => {
    const [k, c] = e.kind.kronecker!.factorSizes(e.layer);
    return { k, c, a: Float64Array.from({ length: k * k }, (_, i) => Math.cos(i)), g: Float64Array.from({ length: c * c }, (_, i) => Math.sin(i)) };
  });
  const kfac = new PMatKFAC(lc, factors, 'expand');
  for (const [name, M] of [['MLP PMatDiag partial', diag], ['MLP PMatKFAC partial', kfac]] as const) {
    const bytes = serialize(M);
    const mb = bytes.length / 2 ** 20;
    const crc = median(() => crc32c(bytes));
    console.log(JSON.stringify({ row: name, megabytes: +mb.toFixed(1), crc32cMs: crc, crcGBps: +(mb / 1024 / (crc / 1000)).toFixed(2), decodeMs: median(() => decode(bytes)), deserializeMs: median(() => deserialize(bytes, model).dispose()), plainCopyMs: median(() => bytes.slice()) }));
  }
  diag.dispose();
  kfac.dispose();
  model.dispose();
}

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  const only = process.env.BENCH_PERSISTENCE_ROWS ?? 'dense,mlp';
  if (only.includes('mlp')) mlpPartials();
  if (only.includes('dense')) dense();
}

void main();
