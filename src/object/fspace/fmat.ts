/**
 * The interface shared by the representations of a function-space matrix: the empirical
 * tangent kernel K[o, i, o', j] = ⟨∂f_o(x_i)/∂θ, ∂f_o'(x_j)/∂θ⟩ of O outputs on n examples
 * (CONVENTIONS.md: shape [O, n, O, n], no averaging), i.e. J Jᵀ for the Jacobian J of a PFMap.
 * Rows and columns are indexed by (o, i) in the row-major order o·n + i of FVector.
 */
import type { LayerCollection } from '../../layers/layer-collection.js';
import type { PassSpec } from '../../backend/pass.js';

/** What a Gram matrix is computed from. */
export interface GramSpec extends PassSpec {
  /**
   * Subtract from every per-example gradient its mean over the examples (per output) before
   * taking inner products (see `centerKernel`). Default false.
   */
  readonly centering?: boolean;
}

/** Operations every FMat representation supports. */
export interface FMatBase {
  /** The parameters θ of the Jacobians whose Gram matrix this is. */
  readonly layerCollection: LayerCollection;
  /** Number O of outputs per example. */
  readonly numOutputs: number;
  /** Number n of examples. */
  readonly numExamples: number;
  /** Releases the tensors the matrix holds; using it afterwards throws DisposedError. */
  dispose(): void;
}

/** An FMat representation class, as passed to GramMatrix({ representation }). */
export interface FMatRepresentation<F extends FMatBase> {
  /** The class's name in messages ('FMatDense'). */
  readonly representationName: string;
  /** Computes the Gram matrix K defined by `spec` (what GramMatrix calls). */
  compute(spec: GramSpec): Promise<F>;
}
