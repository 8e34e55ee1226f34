/**
 * One symmetric n×n block held twice: exactly, as float64 on the host (for factorisations,
 * traces and norms), and as a float32 device tensor created on first use (for products with
 * vectors). PMatDense is one such block; PMatBlockDiag one per layer.
 */
import { tf } from '../../tf.js';
import { InvalidArgumentError } from '../../errors.js';
import { checkAlive } from '../disposal.js';
import { cholesky, choleskySolve, eighSym, gemm } from '../../linalg/index.js';

/** A symmetric dense block in float64 (one layer of PMatBlockDiag, a factor of PMatKFAC): products, solves and eigendecompositions on the host. */
export class SymmetricBlock {
  /** The block is n×n. */
  readonly n: number;
  private host: Float64Array | null;
  private device: tf.Tensor2D | null = null;
  /** The class named by DisposedError once disposed. */
  private owner = 'matrix';
  private factor: { regul: number; l: Float64Array } | null = null;
  private eigenvalues: Float64Array | null = null;

  /** False only for products of two blocks (mm), which need not be symmetric. */
  readonly symmetric: boolean;

  /** Takes ownership of `host` (row-major n×n). */
  constructor(host: Float64Array, n: number, symmetric = true) {
    this.host = host;
    this.n = n;
    this.symmetric = symmetric;
    // Created now rather than on first use, so that the tensors a matrix holds are all
    // accounted for when it is returned (no operation changes tf.memory() afterwards).
    this.device = tf.tensor2d(new Float32Array(host), [n, n]);
  }

  /** The block as float64, n×n row-major, not copied. */
  get values(): Float64Array {
    checkAlive(this.host !== null, this.owner);
    return this.host;
  }

  /** The float32 device copy [n, n], not copied (released with the block). */
  tensor(): tf.Tensor2D {
    checkAlive(this.device !== null, this.owner);
    return this.device;
  }

  /** Σ_i B_ii. */
  trace(): number {
    const a = this.values;
    let s = 0;
    for (let i = 0; i < this.n; i++) s += a[i * this.n + i]!;
    return s;
  }

  /** ‖B‖²_F. */
  frobeniusSquared(): number {
    let s = 0;
    for (const x of this.values) s += x * x;
    return s;
  }

  /** Eigenvalues in ascending order (computed once); symmetric blocks only. */
  spectrum(): Float64Array {
    this.requireSymmetric('spectrum');
    this.eigenvalues ??= eighSym(this.values, this.n).values;
    return this.eigenvalues;
  }

  /** Largest and smallest singular values (|λ| for a symmetric block, √λ(BᵀB) otherwise). */
  extremeSingularValues(): {
    /** The largest singular value σ_max. */
    max: number;
    /** The smallest singular value σ_min. */
    min: number;
  } {
    const values = this.symmetric
      ? Array.from(this.spectrum(), (l) => Math.abs(l))
      : Array.from(eighSym(gemm(transpose(this.values, this.n), this.n, this.n, this.values, this.n), this.n).values, (l) =>
          Math.sqrt(Math.max(l, 0)),
        );
    if (values.length === 0) return { max: 0, min: 0 };
    return { max: values.reduce((a, b) => Math.max(a, b), 0), min: values.reduce((a, b) => Math.min(a, b), Infinity) };
  }

  private requireSymmetric(op: string): void {
    if (!this.symmetric) {
      throw new InvalidArgumentError(`${op} needs a symmetric matrix, and this one is a product of two matrices (mm)`);
    }
  }

  /** The diagonal (B_11, …, B_nn) as a new array. */
  diagonal(): Float64Array {
    const d = new Float64Array(this.n);
    for (let i = 0; i < this.n; i++) d[i] = this.values[i * this.n + i]!;
    return d;
  }

  /** B v for v of shape [n] (device). */
  mv(v: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() => tf.matMul(this.tensor(), v.reshape([this.n, 1])).reshape([this.n]) as tf.Tensor1D);
  }

  private choleskyOf(regul: number): Float64Array {
    this.requireSymmetric('solve / inv');
    if (this.factor?.regul !== regul) {
      const a = new Float64Array(this.values);
      for (let i = 0; i < this.n; i++) a[i * this.n + i]! += regul;
      this.factor = { regul, l: cholesky(a, this.n) };
    }
    return this.factor.l;
  }

  /** (B + regul·I)⁻¹ R for R row-major n×nrhs (float64, Cholesky cached per regul). */
  solve(rhs: Float64Array, nrhs: number, regul: number): Float64Array {
    return choleskySolve(this.choleskyOf(regul), this.n, rhs, nrhs);
  }

  /** (B + regul·I)⁻¹ as a new block. */
  inverse(regul: number): SymmetricBlock {
    const eye = new Float64Array(this.n * this.n);
    for (let i = 0; i < this.n; i++) eye[i * this.n + i] = 1;
    const inv = this.solve(eye, this.n, regul);
    symmetrise(inv, this.n);
    return new SymmetricBlock(inv, this.n);
  }

  /** αB + βC, exact in float64. */
  combine(alpha: number, other: SymmetricBlock | null, beta: number): SymmetricBlock {
    if (other && other.n !== this.n) throw new InvalidArgumentError(`block sizes differ: ${this.n} vs ${other.n}`);
    const a = this.values;
    const b = other?.values;
    const out = new Float64Array(a.length);
    for (let k = 0; k < a.length; k++) out[k] = alpha * a[k]! + (b ? beta * b[k]! : 0);
    return new SymmetricBlock(out, this.n, this.symmetric && (other?.symmetric ?? true));
  }

  /** The product B C (not symmetric in general; stored as is). */
  matmul(other: SymmetricBlock): SymmetricBlock {
    return new SymmetricBlock(gemm(this.values, this.n, this.n, other.values, this.n), this.n, false);
  }

  /** Releases the block; later use throws DisposedError naming `owner` (the class of the object that held it). */
  dispose(owner = 'matrix'): void {
    this.owner = owner;
    this.device?.dispose();
    this.device = null;
    this.host = null;
    this.factor = null;
  }
}

/** A ← (A + Aᵀ)/2, removing the rounding asymmetry of a computed inverse. */
function symmetrise(a: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const m = 0.5 * (a[i * n + j]! + a[j * n + i]!);
      a[i * n + j] = m;
      a[j * n + i] = m;
    }
  }
}

function transpose(a: Float64Array, n: number): Float64Array {
  const t = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) t[j * n + i] = a[i * n + j]!;
  return t;
}
