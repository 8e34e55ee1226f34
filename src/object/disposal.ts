/**
 * The one disposal pattern of every object that holds tensors (matrices, vectors, maps, the
 * optimizer, the Laplace approximation): `dispose()` releases the tensors and may be called
 * again (a no-op); every other method and accessor starts with `checkAlive`, so use after
 * dispose throws the same typed error everywhere —
 * `DisposedError: this PMatDiag has been disposed; it cannot be used any more` — naming the
 * object's class, never a tfjs "Tensor is disposed" from deep inside an operation.
 */
import { DisposedError } from '../errors.js';

/**
 * Throws DisposedError "this `what` has been disposed; it cannot be used any more" unless
 * `alive` (for a nullable storage field, `checkAlive(this.x !== null, 'Class')` also narrows
 * `this.x` to non-null).
 */
export function checkAlive(alive: boolean, what: string): asserts alive {
  if (!alive) throw new DisposedError(`this ${what} has been disposed; it cannot be used any more`);
}
