/**
 * Which models the Hessian can be computed for, decided before any pass over the data, so that
 * a model tfjs cannot differentiate twice correctly gets an error naming the layer instead of a
 * wrong number.
 *
 * With the gradient replacements of second-order-gradients.ts, the layer classes below have
 * second derivatives that match finite differences of gradients (test/metrics/hessian.test.ts
 * checks each of them). Two kinds of layer remain:
 * - layers whose second derivative tfjs cannot form at all (MaxPooling: MaxPoolGrad has no
 *   gradient; UpSampling2D: ResizeNearestNeighborGrad / ResizeBilinearGrad): tfjs throws when
 *   one of them lies between a collected layer and the output, and `translateSecondOrderError`
 *   turns that into an UnsupportedLayerError naming the layer and the op;
 * - layers that could be silently wrong: the 'logSoftmax' activation (tf.logSoftmax is a
 *   tf.customGrad op whose saved value is off the tape) and every class not listed here (custom
 *   layers may use such ops). They are refused up front unless `allowUnverifiedLayers` is set.
 */
import type { tf } from '../tf.js';
import { UnsupportedLayerError } from '../errors.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import { layerActivation } from '../layers/tfjs-internals.js';
import { leafLayers } from '../layers/leaf-layers.js';
import { secondOrderVerifiedClasses, secondOrderVerifiedKinds } from '../layers/registry.js';

/** Layer kinds (src/layers) whose pre-activation, differentiated twice in θ, is verified. */
const VERIFIED_KINDS = new Set(secondOrderVerifiedKinds());

/**
 * Layer classes without trainable weights whose second derivatives are verified (or fail loudly, see
 * below); the classes of the registered layer kinds come from the registry (`secondOrderVerified`).
 */
const VERIFIED = new Set([
  ...secondOrderVerifiedClasses(),
  'InputLayer',
  'Flatten',
  'Reshape',
  'Permute',
  'Dropout',
  'SpatialDropout1D',
  'GaussianNoise',
  'GaussianDropout',
  'AlphaDropout',
  'Activation',
  'ReLU',
  'LeakyReLU',
  'ELU',
  'Softmax',
  'Add',
  'Multiply',
  'Average',
  'Concatenate',
  'ZeroPadding2D',
  'Cropping2D',
  'AveragePooling2D',
  'GlobalAveragePooling1D',
  'GlobalAveragePooling2D',
  'GlobalMaxPooling1D',
  'GlobalMaxPooling2D',
  'MaxPooling1D',
  'MaxPooling2D',
  'UpSampling2D',
]);

/** Ops without a second derivative in tfjs 4.22, and the layer classes that produce them. */
const NO_SECOND_DERIVATIVE: Record<string, readonly string[]> = {
  MaxPoolGrad: ['MaxPooling1D', 'MaxPooling2D'],
  ResizeNearestNeighborGrad: ['UpSampling2D'],
  ResizeBilinearGrad: ['UpSampling2D'],
};

/** Activations whose second derivative tfjs gets wrong without an error. */
const WRONG_ACTIVATIONS = new Set(['logSoftmax']);

/**
 * Throws UnsupportedLayerError for the first layer of `model` whose second derivative tfjs
 * could get wrong without an error: a collected layer of an unchecked kind, a 'logSoftmax'
 * activation, or a layer class not listed above.
 */
export function checkSecondOrderSupport(model: tf.LayersModel, lc: LayerCollection, allowUnverifiedLayers: boolean): void {
  for (const e of lc.layers) {
    // A collected layer runs through its kind's `preactivation` with the parameters as inputs.
    if (!VERIFIED_KINDS.has(e.kind.name) && !allowUnverifiedLayers) {
      throw new UnsupportedLayerError(
        `Hessian: layer '${e.id}' is collected through the layer kind '${e.kind.name}', whose second derivatives in tfjs 4.22 have not ` +
          `been checked (checked: ${[...VERIFIED_KINDS].join(', ')}). Leave it out of the layer collection, or pass { allowUnverifiedLayers: true }.`,
      );
    }
  }
  for (const { id, layer } of leafLayers(model)) {
    const activation = layerActivation(layer)?.getClassName();
    if (activation && WRONG_ACTIVATIONS.has(activation)) {
      throw new UnsupportedLayerError(
        `Hessian: layer '${id}' uses the '${activation}' activation, which tfjs 4.22 implements with a custom gradient that ` +
          `it cannot differentiate twice (the result would be wrong). Use a linear output layer and loss 'cross_entropy' instead.`,
      );
    }
    const cls = layer.getClassName();
    if (!VERIFIED.has(cls) && !allowUnverifiedLayers) {
      throw new UnsupportedLayerError(
        `Hessian: layer '${id}' of class ${cls} is not among the layers whose second derivatives in tfjs 4.22 have been checked ` +
          `(${[...VERIFIED].join(', ')}); it may use ops whose gradients tfjs cannot differentiate correctly. ` +
          `Pass { allowUnverifiedLayers: true } to compute anyway (check the result, e.g. against finite differences of gradients).`,
      );
    }
  }
}

/** Turns tfjs's "gradient function not found" during grad-of-grad into an UnsupportedLayerError naming the layers. */
export function translateSecondOrderError(e: unknown, model: tf.LayersModel): unknown {
  const op = e instanceof Error ? /gradient function not found for (\w+)/.exec(e.message)?.[1] : undefined;
  if (!op) return e;
  const classes = NO_SECOND_DERIVATIVE[op] ?? [];
  const culprits = [...leafLayers(model)].filter(({ layer }) => classes.includes(layer.getClassName())).map(({ id, layer }) => `'${id}' (${layer.getClassName()})`);
  return new UnsupportedLayerError(
    `Hessian: tfjs 4.22 cannot differentiate the op '${op}' twice` +
      (culprits.length ? `; it comes from layer ${culprits.join(', ')}, which lies between a collected layer and the output` : '') +
      `. Replace the layer (e.g. a strided Conv2D or AveragePooling2D for MaxPooling2D), or restrict the layer collection to layers after it.`,
  );
}
