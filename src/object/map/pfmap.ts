/**
 * The interface shared by the representations of a parameter-to-function map: the Jacobian
 * J ∈ R^{(O·n)×d} of the model outputs f_o(x_i) (O outputs per example, flattened; n examples in
 * loader order) with respect to the d parameters of a layer collection (CONVENTIONS.md:
 * J stacked as [O, n, d], no averaging). J maps a parameter vector v to the function-space
 * vector J v (`jvp`, an FVector [O, n]) and, transposed, a function-space vector f to the
 * parameter vector Jᵀ f = Σ_{o,i} f_oi ∇θ f_o(x_i) (`vjp`).
 */
import type { LayerCollection } from '../../layers/layer-collection.js';
import type { PassSpec } from '../../backend/pass.js';

/** Operations every PFMap representation supports. */
export interface PFMapBase {
  /** The parameters θ the map differentiates with respect to. */
  readonly layerCollection: LayerCollection;
  /** Releases the tensors the map holds; using it afterwards throws DisposedError. */
  dispose(): void;
}

/** A PFMap representation class, as passed to Jacobian({ representation }). */
export interface PFMapRepresentation<M extends PFMapBase> {
  /** The class's name in messages ('PFMapDense'). */
  readonly representationName: string;
  /** Computes the map defined by `spec` (its `outputs` give the rows that are differentiated). */
  compute(spec: PassSpec): Promise<M>;
}
