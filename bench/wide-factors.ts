/**
 * The wide Kronecker factor of the bench CNN's dense layer: A = XᵀX/m, K = 5,409 inputs (with
 * the bias), m = 1,024 examples. Times eighFromRowsThin (the m×m Gram route, null space
 * implicit: what KFAC/EKFAC use), then the explicit completion that eighFromRows adds, and,
 * with --direct, eighSym on the dense A, with the agreement of the spectra.
 *
 * `npx tsx bench/wide-factors.ts [m] [K] [--direct]` (defaults 1024 5409).
 *
 * `npx tsx bench/wide-factors.ts --ekfac`: instead, the bench CNN (28x28x1 → conv16 → conv32
 * stride 2 → dense 10, 1,024 examples in batches of 128, seed 100: bench/workloads.ts) on the
 * tfjs wasm backend: the plain forward+backward pass (median of 3), FIM(PMatEKFAC) (the factor
 * eigendecompositions, its dense layer's 5,409-wide one through the Gram route) and updateDiag,
 * each as a multiple of the plain pass.
 */
import * as tf from '@tensorflow/tfjs';
import { eighSym, initLinalg, linalgInfo } from '../src/linalg/index.js';
import { completeEigen, eighFromRowsThin } from '../src/linalg/gram-eigen.js';

const args = process.argv.slice(2);
// CPU time (user + system) beside the wall time: on a shared, loaded machine the wall time
// measures the load, the CPU time what the computation costs on one core.
const cpuMs = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1000;
if (args.includes('--ekfac')) {
  await benchCnnEkfac();
  process.exit(0);
}

const [m, k] = [Number(args[0] ?? 1024), Number(args[1] ?? 5409)];
await initLinalg();
// Seeded rows uniform in (−0.5, 0.5): mulberry32.
let s = 12345;
const next = () => {
  s = (s + 0x6d2b79f5) >>> 0;
  let t = Math.imul(s ^ (s >>> 15), 1 | s);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
};
const x = Float64Array.from({ length: m * k }, next);
let t0 = performance.now();
let c0 = process.cpuUsage();
const thin = eighFromRowsThin(x, m, k, 1 / m);
const thinMs = performance.now() - t0;
const thinCpu = cpuMs(process.cpuUsage(c0));
console.log(`eighFromRowsThin m=${m} K=${k} (${linalgInfo().implementation}): ${thinMs.toFixed(0)} ms wall, ${thinCpu.toFixed(0)} ms CPU (rank ${thin.rank}, null space implicit)`);
t0 = performance.now();
c0 = process.cpuUsage();
const gram = completeEigen(thin);
const completeMs = performance.now() - t0;
const completeCpu = cpuMs(process.cpuUsage(c0));
const gramCpu = thinCpu + completeCpu;
console.log(`  + explicit completion (eighFromRows): ${completeMs.toFixed(0)} ms wall, ${completeCpu.toFixed(0)} ms CPU`);
if (args.includes('--direct')) {
  const xt = new Float64Array(k * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) xt[j * m + i] = x[i * k + j]!;
  const { gemm } = await import('../src/linalg/index.js');
  const a = gemm(xt, k, m, x, k).map((v) => v / m);
  t0 = performance.now();
  c0 = process.cpuUsage();
  const direct = eighSym(a, k);
  const directMs = performance.now() - t0;
  const directCpu = cpuMs(process.cpuUsage(c0));
  let worst = 0;
  for (let j = 0; j < k; j++) worst = Math.max(worst, Math.abs(direct.values[j]! - gram.values[j]!));
  console.log(`eighSym K=${k}: ${directMs.toFixed(0)} ms wall, ${directCpu.toFixed(0)} ms CPU; max |Δλ| / λ_max = ${(worst / direct.values[k - 1]!).toExponential(1)}; CPU-time speed-up ${(directCpu / thinCpu).toFixed(1)}× (thin), ${(directCpu / gramCpu).toFixed(1)}× (completed)`);
}

async function benchCnnEkfac(): Promise<void> {
  await import('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend('wasm');
  await initLinalg();
  const { FIM, PMatDiag, PMatEKFAC } = await import('../src/index.js');
  const { cnn, plainStep, seededData } = await import('./workloads.js');
  const model = cnn();
  const loader = seededData(model, 1024, 100);
  const plain = plainStep(model, loader);
  (await FIM({ model, loader: loader.slice(0, 1), representation: PMatDiag })).dispose(); // kernel set-up, as bench/fim-bench.ts
  plain();
  const plainMs: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t = performance.now();
    plain();
    plainMs.push(performance.now() - t);
  }
  const unit = plainMs.sort((a, b) => a - b)[1]!;
  const timed = async <T>(f: () => Promise<T>): Promise<{ value: T; ms: number; cpu: number }> => {
    const t = performance.now();
    const c = process.cpuUsage();
    const value = await f();
    return { value, ms: performance.now() - t, cpu: cpuMs(process.cpuUsage(c)) };
  };
  const fim = await timed(() => FIM({ model, loader, representation: PMatEKFAC }) as Promise<InstanceType<typeof PMatEKFAC>>);
  const update = await timed(() => fim.value.updateDiag(loader));
  console.log(`bench CNN, 1,024 examples: plain forward+backward ${unit.toFixed(0)} ms (median of 3)`);
  console.log(`  FIM(PMatEKFAC): ${fim.ms.toFixed(0)} ms wall, ${fim.cpu.toFixed(0)} ms CPU = ${(fim.ms / unit).toFixed(1)} plain steps`);
  console.log(`  updateDiag: ${update.ms.toFixed(0)} ms wall, ${update.cpu.toFixed(0)} ms CPU = ${(update.ms / unit).toFixed(1)} plain steps`);
  console.log(`  EKFAC + updateDiag: ${((fim.ms + update.ms) / unit).toFixed(1)} plain steps`);
  fim.value.dispose();
  loader.forEach((b) => tf.dispose([b.xs, b.ys]));
  model.dispose();
}
