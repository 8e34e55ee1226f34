/**
 * What the spectral tools work on: a symmetric linear operator known only through its
 * products. Parameter-space operators (every PMat, PMatImplicit, PMatHessianImplicit, or a
 * user's function wrapped by `asOperator`) multiply PVectors; function-space operators
 * (FMatDense, `gramOperator`) multiply FVectors. The algorithms themselves run on flat float64
 * host vectors (`HostOperator`): the float32 products are the only device work, and the
 * orthogonalisations that Lanczos-type methods need are done in float64 (Paige 1976: lost
 * orthogonality, not the product, is what spoils Lanczos in low precision).
 */
import { tf } from '../tf.js';
import { DisposedError, InvalidArgumentError, NonFiniteError, ShapeMismatchError } from '../errors.js';
import { LayerCollection } from '../layers/layer-collection.js';
import { PVector } from '../object/pvector.js';
import { FVector } from '../object/fvector.js';
import { describe } from '../object/arguments.js';
import { checkAbort, type SpectralProgress } from './options.js';

/** A symmetric operator on parameter space: M v for PVectors of `layerCollection`. */
export interface ParameterOperator {
  /** The parameters the operator acts on. */
  readonly layerCollection: LayerCollection;
  /** M v as a new vector (the caller disposes it). */
  mv(v: PVector): PVector | Promise<PVector>;
}

/** A symmetric operator on function space: K f for FVectors of shape [numOutputs, numExamples]. */
export interface FunctionOperator {
  /** The number O of outputs per example. */
  readonly numOutputs: number;
  /** The number n of examples. */
  readonly numExamples: number;
  /** K f as a new vector [O, n] (the caller disposes it). */
  mv(f: FVector): FVector | Promise<FVector>;
}

/** Any operator the spectral tools accept. */
export type LinearOperator = ParameterOperator | FunctionOperator;

/** The vector type an operator multiplies: FVector for function-space operators, else PVector. */
export type VectorOf<Op> = Op extends FunctionOperator ? FVector : PVector;

/**
 * Wraps a product function as a parameter-space operator, for matrices the library does not
 * build (a damped matrix, a sum of two curvatures, a projected Hessian, ...). `mv` must be
 * symmetric for eigsh and spectralDensity to mean anything; the trace and diagonal estimators
 * only need it linear.
 *
 * @example
 * // F + 0.1·I without forming it
 * const op = asOperator(async (v) => { const fv = await F.mv(v); const out = fv.add(v.scale(0.1)); ... }, lc);
 * const { values } = await eigsh(op, { k: 5 });
 */
export function asOperator(mv: (v: PVector) => PVector | Promise<PVector>, lc: LayerCollection): ParameterOperator {
  if (typeof mv !== 'function') throw new InvalidArgumentError(`asOperator: 'mv' must be a function v => M v, received ${describe(mv)}`);
  if (!(lc instanceof LayerCollection)) throw new InvalidArgumentError(`asOperator: 'lc' must be a LayerCollection, received ${describe(lc)}`);
  return { layerCollection: lc, mv };
}

/** What `gramOperator` needs of a Jacobian J: J v and Jᵀ f (PFMapDense and PFMapImplicit qualify). */
export interface JacobianProducts {
  /** The parameters θ of J. */
  readonly layerCollection: LayerCollection;
  /** J v, [O, n]: the change of every output for the parameter direction v. */
  jvp(v: PVector): FVector | Promise<FVector>;
  /** Jᵀ f: the parameter vector Σ_o,i f_oi ∂f_o(x_i)/∂θ. */
  vjp(f: FVector): PVector | Promise<PVector>;
}

/**
 * The Gram matrix / empirical NTK K = J Jᵀ as a function-space operator that never stores K:
 * K f = J (Jᵀ f), two products with J (two passes over the data for a PFMapImplicit). Cheaper
 * than FMatDense whenever (O·n)² floats would not fit or few products are needed.
 *
 * @example
 * const J = await Jacobian({ model, loader, representation: PFMapImplicit });
 * const K = gramOperator(J, { outputs: 10, examples: 512 });
 * const { values } = await eigsh(K, { k: 5 });
 */
export function gramOperator(
  jacobian: JacobianProducts,
  shape: { outputs: number; examples: number },
): FunctionOperator & {
  /** The parameters θ of J. */
  readonly layerCollection: LayerCollection;
} {
  if (!jacobian || typeof jacobian.jvp !== 'function' || typeof jacobian.vjp !== 'function') {
    throw new InvalidArgumentError(`gramOperator: 'jacobian' must have jvp and vjp (a PFMapDense or PFMapImplicit), received ${describe(jacobian)}`);
  }
  for (const [name, v] of [['outputs', shape?.outputs], ['examples', shape?.examples]] as const) {
    if (!(Number.isInteger(v) && (v as number) >= 1)) throw new InvalidArgumentError(`gramOperator: '${name}' must be an integer ≥ 1, received ${describe(v)}`);
  }
  return {
    layerCollection: jacobian.layerCollection,
    numOutputs: shape.outputs,
    numExamples: shape.examples,
    async mv(f: FVector): Promise<FVector> {
      const g = await jacobian.vjp(f);
      try {
        return await jacobian.jvp(g);
      } finally {
        g.dispose();
      }
    },
  };
}

/** An operator seen as a map on flat float64 host vectors of length `size`. */
export interface HostOperator<V> {
  readonly size: number;
  /** M x: one product, validated (type, layer collection or shape, finite values). */
  apply(x: Float64Array): Promise<Float64Array>;
  /** A float32 vector of the operator's space holding x. */
  toVector(x: Float64Array): V;
  /** Products taken so far. */
  readonly products: number;
}

export interface HostOperatorOptions {
  signal?: AbortSignal;
  onProgress?: (p: SpectralProgress) => void;
  /** The product budget reported to onProgress. */
  maxProducts: number;
}

/** Whether `op` is a function-space operator (has numeric numOutputs and numExamples). */
export function isFunctionOperator(op: LinearOperator): op is FunctionOperator {
  const o = op as Partial<FunctionOperator>;
  return typeof o.numOutputs === 'number' && typeof o.numExamples === 'number';
}

/** Validates `op` (throws InvalidArgumentError naming `where`) and returns its dimension. */
export function operatorSize(op: unknown, where: string): number {
  if (op === null || typeof op !== 'object' || typeof (op as { mv?: unknown }).mv !== 'function') {
    throw new InvalidArgumentError(`${where}: 'op' must be an operator with a method mv(v) (a PMat, PMatImplicit, PMatHessianImplicit, FMatDense, or asOperator(mv, lc)), received ${describe(op)}`);
  }
  if (isFunctionOperator(op as LinearOperator)) {
    const f = op as FunctionOperator;
    if (!(Number.isInteger(f.numOutputs) && f.numOutputs >= 1 && Number.isInteger(f.numExamples) && f.numExamples >= 1)) {
      throw new InvalidArgumentError(`${where}: a function-space operator needs integer numOutputs and numExamples ≥ 1, received ${f.numOutputs} and ${f.numExamples}`);
    }
    return f.numOutputs * f.numExamples;
  }
  const lc = (op as { layerCollection?: unknown }).layerCollection;
  if (!(lc instanceof LayerCollection)) {
    throw new InvalidArgumentError(`${where}: 'op' must have a layerCollection (parameter space) or numOutputs and numExamples (function space); wrap a plain function with asOperator(mv, lc)`);
  }
  return lc.numel();
}

/** The host view of `op` (validated by `operatorSize` first). */
export function hostOperator<Op extends LinearOperator>(op: Op, where: string, options: HostOperatorOptions): HostOperator<VectorOf<Op>> {
  const size = operatorSize(op, where);
  let products = 0;
  const fn = isFunctionOperator(op);
  const shape = fn ? [(op as FunctionOperator).numOutputs, (op as FunctionOperator).numExamples] : null;
  const lc = fn ? null : (op as ParameterOperator).layerCollection;
  const toVector = (x: Float64Array): VectorOf<Op> =>
    (shape ? FVector.adopt(tf.tensor2d(Float32Array.from(x), shape as [number, number])) : PVector.adopt(lc!, tf.tensor1d(Float32Array.from(x)))) as VectorOf<Op>;
  return {
    size,
    get products() {
      return products;
    },
    toVector,
    async apply(x: Float64Array): Promise<Float64Array> {
      checkAbort(options.signal, where);
      const v = toVector(x);
      let out: unknown;
      try {
        out = await (op.mv as (v: VectorOf<Op>) => unknown)(v);
        return readResult(out, v, where, shape, lc, products + 1);
      } catch (e) {
        if (e instanceof DisposedError && !e.message.startsWith(where)) {
          throw new DisposedError(`${where}: the operator has been disposed (${e.message}); compute it again or pass a live one`);
        }
        throw e;
      } finally {
        if (out !== v && (out instanceof PVector || out instanceof FVector)) out.dispose();
        v.dispose();
        products++;
        options.onProgress?.({ products, maxProducts: options.maxProducts });
      }
    },
  };
}

function readResult(out: unknown, input: unknown, where: string, shape: number[] | null, lc: LayerCollection | null, index: number): Float64Array {
  const expected = shape ? FVector : PVector;
  if (!(out instanceof expected)) throw new InvalidArgumentError(`${where}: op.mv must return a ${expected.name}, product ${index} returned ${describe(out)}`);
  if (out === input) throw new InvalidArgumentError(`${where}: op.mv returned its input vector; it must return a new vector M v`);
  if (out.isDisposed) throw new DisposedError(`${where}: op.mv returned a disposed vector (product ${index})`);
  if (shape) {
    const s = (out as FVector).data.shape;
    if (s[0] !== shape[0] || s[1] !== shape[1]) throw new ShapeMismatchError(`${where}: op.mv returned an FVector of shape [${s}], expected [${shape}] (outputs, examples)`);
  } else {
    lc!.assertSame((out as PVector).layerCollection, `the vector returned by op.mv in ${where}`);
  }
  const values = new Float64Array(out.data.dataSync());
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) throw new NonFiniteError(`${where}: op.mv returned a non-finite value (${values[i]}) at entry ${i} of product ${index}; check the operator (a diverged model, a NaN in the data)`);
  }
  return values;
}
