// Speed sanity check: prints stock vs fixed timings (no assertion: timings depend on the machine).
// Full numbers: npx tsx bench/kernels.ts
import { after, before, describe, it } from 'node:test';
import { tf } from '../../src/tf.js';
import { useTestBackend } from '../support/backend.js';
import { installKernelFixes, uninstallKernelFixes } from '../../src/backend/kernels/index.js';

function medianMs(f: () => tf.Tensor, reps = 3): number {
  const once = (): number => {
    const t0 = performance.now();
    const out = f();
    out.dataSync();
    out.dispose();
    return performance.now() - t0;
  };
  once();
  const times = Array.from({ length: reps }, once).sort((a, b) => a - b);
  return times[Math.floor(reps / 2)]!;
}

describe('kernel fixes: speed sanity printout', () => {
  before(async () => {
    await useTestBackend('wasm');
  });
  after(() => installKernelFixes());

  it('prints stock vs fixed timings', () => {
    const a = tf.randomNormal([256, 256]);
    const b = tf.randomNormal([256, 256]);
    const x = tf.randomNormal([32, 28, 28, 16]) as tf.Tensor4D;
    const dy = tf.randomNormal([32, 14, 14, 32]) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, 16, 32]) as tf.Tensor4D;
    const attrs = { strides: 2, pad: 'same', dataFormat: 'NHWC' };
    const cases: Array<[string, () => tf.Tensor]> = [
      ['matMul 256³ transposeA', () => tf.matMul(a, b, true, false)],
      ['Conv2DBackpropInput [32,28,28,16] k3 s2 co32', () =>
        tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: w }, { ...attrs, inputShape: x.shape }) as tf.Tensor],
      ['Conv2DBackpropFilter [32,28,28,16] k3 s2 co32', () =>
        tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: w.shape }) as tf.Tensor],
    ];
    for (const [label, f] of cases) {
      uninstallKernelFixes();
      let stock = 'missing';
      if (tf.getKernel(label.startsWith('matMul') ? 'BatchMatMul' : label.split(' ')[0]!, 'wasm') != null) stock = `${medianMs(f).toFixed(1)} ms`;
      installKernelFixes();
      console.log(`  ${label.padEnd(48)} stock ${stock.padStart(9)}   fixed ${medianMs(f).toFixed(1).padStart(6)} ms`);
    }
    tf.dispose([a, b, x, dy, w]);
  });
});
