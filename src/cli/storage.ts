/**
 * Bytes a computed matrix actually holds, read from its storage (float64 host arrays, float32
 * tensors) rather than from a formula, so that the tables show what a representation costs.
 * Lazily built caches (eigendecompositions, Cholesky factors) are not counted. Each
 * representation's registry entry says how to measure it (`storedBytes`). Browser-safe.
 */
import type { PMatBase } from '../index.js';
import { storedBytesOf } from '../object/pspace/registry.js';

/** Bytes stored by `M`, or null for a representation the registry does not measure. */
export function storageBytes(M: PMatBase): number | null {
  return storedBytesOf(M);
}
