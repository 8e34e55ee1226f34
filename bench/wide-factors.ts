/**
 * The wide Kronecker factor of the bench CNN's dense layer: A = XᵀX/m, K = 5,409 inputs (with
 * the bias), m = 1,024 examples. Times eighFromRows (the m×m Gram route) and, with --direct,
 * eighSym on the dense A, with the agreement of the two spectra.
 *
 * `npx tsx bench/wide-factors.ts [m] [K] [--direct]` (defaults 1024 5409).
 */
import { eighSym, initLinalg, linalgInfo } from '../src/linalg/index.js';
import { eighFromRows } from '../src/linalg/gram-eigen.js';

const args = process.argv.slice(2);
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
// CPU time (user + system) beside the wall time: on a shared, loaded machine the wall time
// measures the load, the CPU time what the computation costs on one core.
const cpuMs = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1000;
let t0 = performance.now();
let c0 = process.cpuUsage();
const gram = eighFromRows(x, m, k, 1 / m);
const gramMs = performance.now() - t0;
const gramCpu = cpuMs(process.cpuUsage(c0));
console.log(`eighFromRows m=${m} K=${k} (${linalgInfo().implementation}): ${gramMs.toFixed(0)} ms wall, ${gramCpu.toFixed(0)} ms CPU`);
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
  console.log(`eighSym K=${k}: ${directMs.toFixed(0)} ms wall, ${directCpu.toFixed(0)} ms CPU; max |Δλ| / λ_max = ${(worst / direct.values[k - 1]!).toExponential(1)}; CPU-time speed-up ${(directCpu / gramCpu).toFixed(1)}×`);
}
