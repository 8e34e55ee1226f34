/**
 * Helpers shared by the Kronecker-factored representations (PMatKFAC, PMatEKFAC): the kfacType
 * option, scalar powers of eigenvalues, and the dense block-diagonal layout of per-layer blocks.
 */
import { tf } from '../../../tf.js';
import { InvalidArgumentError, NotPositiveDefiniteError } from '../../../errors.js';
import type { KfacType } from '../../../layers/layer-kind.js';

/** x^p, refusing 0^p for p < 0 (a singular matrix has no negative power). */
export function powerOf(x: number, p: number, regul: number): number {
  if (x === 0 && p < 0) {
    throw new NotPositiveDefiniteError(`pow(${p}): the matrix + regul·I (regul = ${regul}) is singular; use a regul > 0 or pinv`);
  }
  return x ** p;
}

/** The `kfacType` option: 'expand' (default) or 'reduce' (Eschenhagen et al. 2023). */
export function checkKfacType(t: unknown, where: string): KfacType {
  if (t === undefined) return 'expand';
  if (t !== 'expand' && t !== 'reduce') throw new InvalidArgumentError(`${where}: 'kfacType' must be 'expand' or 'reduce', received ${JSON.stringify(t)}`);
  return t;
}

/** Places square blocks on the diagonal of a zero matrix. */
export function blockDiagonal(blocks: tf.Tensor2D[]): tf.Tensor2D {
  return tf.tidy(() => {
    const d = blocks.reduce((a, b) => a + b.shape[0], 0);
    let at = 0;
    const rows = blocks.map((b) => {
      const n = b.shape[0];
      const row = tf.pad(b, [[0, 0], [at, d - at - n]]);
      at += n;
      return row;
    });
    return tf.concat(rows, 0) as tf.Tensor2D;
  });
}
