/**
 * Cost of the saved-file format: serialize / deserialize of a PMatDense of d = 2,001
 * (32 MB of float64) and the CRC-32C alone, median of 5 runs.
 * Run: node --import tsx bench/persistence.ts
 */
import { tf } from '../src/tf.js';
import { LayerCollection, PMatDense, deserialize, serialize } from '../src/index.js';
import { crc32c } from '../src/persistence/crc32c.js';

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [2000] })] });
  const lc = LayerCollection.fromModel(model);
  const d = lc.numel();
  const values = Float64Array.from({ length: d * d }, (_, i) => Math.sin(i));
  const M = new PMatDense(lc, values);
  const median = (f: () => void) => {
    const t: number[] = [];
    for (let k = 0; k < 5; k++) {
      const t0 = performance.now();
      f();
      t.push(performance.now() - t0);
    }
    return t.sort((a, b) => a - b)[2]!;
  };
  const bytes = serialize(M);
  const mb = bytes.length / 2 ** 20;
  const crc = median(() => crc32c(bytes));
  const ser = median(() => serialize(M));
  const de = median(() => deserialize(bytes, model).dispose());
  const copy = median(() => bytes.slice());
  console.log(JSON.stringify({ megabytes: +mb.toFixed(1), crc32cMs: +crc.toFixed(1), crcGBps: +(mb / 1024 / (crc / 1000)).toFixed(2), serializeMs: +ser.toFixed(1), deserializeMs: +de.toFixed(1), plainCopyMs: +copy.toFixed(1) }));
  M.dispose();
  model.dispose();
}

void main();
