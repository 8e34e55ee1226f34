/**
 * The engine's entry: one pass over the data (pass.ts), shared-pass scheduling (shared-pass.ts)
 * and the output-major stacking helpers (stacking.ts).
 */
export * from './pass.js';
export * from './shared-pass.js';
export * from './stacking.js';
