/**
 * Gradient functions that make tfjs 4.22's second derivatives right, installed only while a
 * Hessian-vector product is being differentiated (`withSecondOrderGradients`).
 *
 * Why they are needed (found by comparing grad-of-grad with finite differences of gradients):
 * 1. Ops whose gradient reads the op's *output* (Exp, Tanh, Sigmoid, Softmax, Elu, ...) give
 *    wrong second derivatives, silently. The engine saves that output as a clone recorded on
 *    the tape *before* the op itself, so tape filtering sees the clone as a constant and the
 *    term of the second derivative that flows through it is dropped (for a tanh MLP with
 *    cross-entropy, grad-of-grad is off by ~100%). The replacements below recompute the
 *    derivative from the op's *input* (1 − tanh(x)², σ(x)(1 − σ(x)), ...): same values to the
 *    last bit for the first derivative, and a differentiable graph for the second.
 * 2. Some gradients are built from ops that have no gradient themselves, so grad-of-grad
 *    throws: Conv2DBackpropFilter (every Conv2D), the depthwise backprop ops (DepthwiseConv2D,
 *    SeparableConv2D), AvgPoolGrad, EluGrad, and the comparisons
 *    (Greater, LogicalAnd, ...) inside the gradients of relu6, selu, leakyRelu, hardSigmoid and
 *    max reductions. Comparisons are piecewise constant: their derivative is zero. The backprop
 *    ops are linear in each input and get their adjoints (conv2d / conv2dTranspose, the
 *    depthwise pair, avgPool).
 * Still unsupported (tfjs throws, and the Hessian turns it into an UnsupportedLayerError):
 * MaxPoolGrad (MaxPooling*), ResizeNearestNeighborGrad / ResizeBilinearGrad (UpSampling2D), LRN.
 * Ops written with tf.customGrad whose forward saves a computed value (tf.logSoftmax,
 * tf.losses.softmaxCrossEntropy) cannot be fixed here; see hessian-support.ts.
 */
import { tf } from '../tf.js';

type GradConfig = Parameters<typeof tf.registerGradient>[0];
type Attrs = Record<string, unknown>;
interface DepthwiseAttrs {
  strides: [number, number];
  pad: 'valid' | 'same' | number;
  dilations: [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** Derivative recomputed from the saved input x: dx = dy · d(x). */
function fromInput(kernelName: string, input: string, derivative: (x: tf.Tensor, attrs: Attrs) => tf.Tensor): GradConfig {
  return {
    kernelName,
    inputsToSave: [input],
    gradFunc: (dy, saved, attrs) => ({ [input]: () => tf.mul(dy as tf.Tensor, derivative(saved[0]!, attrs as Attrs)) }),
  };
}

/** Zero gradient for every input of a piecewise-constant op (comparisons, logic). */
function zeroGradient(kernelName: string, inputs: readonly string[]): GradConfig {
  return {
    kernelName,
    inputsToSave: [...inputs],
    gradFunc: (_dy, saved) => Object.fromEntries(inputs.map((name, k) => [name, () => tf.zeros(saved[k]!.shape, 'float32')])),
  };
}

const REPLACEMENTS: readonly GradConfig[] = [
  fromInput('Exp', 'x', (x) => tf.exp(x)),
  fromInput('Tanh', 'x', (x) => tf.sub(1, tf.square(tf.tanh(x)))),
  fromInput('Sigmoid', 'x', (x) => {
    const s = tf.sigmoid(x);
    return tf.mul(s, tf.sub(1, s));
  }),
  // elu'(x) = 1 for x > 0, exp(x) otherwise; step has a (zero) gradient, a select would not.
  fromInput('Elu', 'x', (x) => {
    const s = tf.step(x);
    return tf.add(s, tf.mul(tf.sub(1, s), tf.exp(tf.minimum(x, 0))));
  }),
  {
    // Softmax Jacobian-vector product y∘dy − y·Σ(y∘dy), with y recomputed from the logits.
    kernelName: 'Softmax',
    inputsToSave: ['logits'],
    gradFunc: (dy, saved, attrs) => ({
      logits: () => {
        const dim = (attrs as { dim: number }).dim;
        const y = tf.softmax(saved[0]!, dim);
        const dyy = tf.mul(dy as tf.Tensor, y);
        return tf.sub(dyy, tf.mul(tf.sum(dyy, dim, true), y));
      },
    }),
  },
  {
    // dW = Σ patches(x) ⊗ dy is bilinear in (x, dy): its adjoints are a conv and a transposed conv.
    kernelName: 'Conv2DBackpropFilter',
    inputsToSave: ['x', 'dy'],
    gradFunc: (ddw, saved, attrs) => {
      const [x, dy] = saved as [tf.Tensor4D, tf.Tensor4D];
      const a = attrs as { strides: [number, number]; pad: 'valid' | 'same' | number; dimRoundingMode?: 'floor' | 'round' | 'ceil' };
      const filter = ddw as tf.Tensor4D;
      return {
        x: () => tf.conv2dTranspose(dy, filter, x.shape, a.strides, a.pad, a.dimRoundingMode),
        dy: () => tf.conv2d(x, filter, a.strides, a.pad, 'NHWC', 1, a.dimRoundingMode),
      };
    },
  },
  {
    // The depthwise pair is bilinear as well: each backprop op's adjoints are the other and the conv.
    kernelName: 'DepthwiseConv2dNativeBackpropFilter',
    inputsToSave: ['x', 'dy'],
    gradFunc: (ddw, saved, attrs) => {
      const [x, dy] = saved as [tf.Tensor4D, tf.Tensor4D];
      const a = attrs as unknown as DepthwiseAttrs;
      return {
        x: () => tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter: ddw as tf.Tensor4D }, { ...a, inputShape: x.shape }) as tf.Tensor,
        dy: () => tf.depthwiseConv2d(x, ddw as tf.Tensor4D, a.strides, a.pad, 'NHWC', a.dilations, a.dimRoundingMode),
      };
    },
  },
  {
    kernelName: 'DepthwiseConv2dNativeBackpropInput',
    inputsToSave: ['dy', 'filter'],
    gradFunc: (ddx, saved, attrs) => {
      const [dy, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
      const a = attrs as unknown as DepthwiseAttrs;
      return {
        dy: () => tf.depthwiseConv2d(ddx as tf.Tensor4D, filter, a.strides, a.pad, 'NHWC', a.dilations, a.dimRoundingMode),
        filter: () => tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x: ddx as tf.Tensor4D, dy }, { ...a, filterShape: filter.shape }) as tf.Tensor,
      };
    },
  },
  {
    // AvgPoolGrad is the adjoint of avgPool, linear in dy: its own adjoint is avgPool.
    kernelName: 'AvgPoolGrad',
    inputsToSave: ['input'],
    gradFunc: (ddx, saved, attrs) => {
      const a = attrs as { filterSize: [number, number]; strides: [number, number]; pad: 'valid' | 'same' | number };
      return {
        dy: () => tf.avgPool(ddx as tf.Tensor4D, a.filterSize, a.strides, a.pad),
        input: () => tf.zeros(saved[0]!.shape, 'float32'),
      };
    },
  },
  ...['Greater', 'Less', 'LessEqual', 'Equal', 'NotEqual', 'LogicalAnd', 'LogicalOr'].map((k) => zeroGradient(k, ['a', 'b'])),
  zeroGradient('LogicalNot', ['x']),
];

/**
 * Runs `f` (synchronously: no other tfjs code can interleave) with the gradient functions above
 * installed, and puts tfjs's own back (or removes those tfjs does not define) afterwards.
 */
export function withSecondOrderGradients<T>(f: () => T): T {
  const saved = REPLACEMENTS.map((r) => tf.getGradient(r.kernelName) as GradConfig | undefined);
  REPLACEMENTS.forEach((r) => tf.registerGradient(r));
  try {
    return f();
  } finally {
    REPLACEMENTS.forEach((r, k) => {
      const original = saved[k];
      if (original) tf.registerGradient(original);
      else tf.unregisterGradient(r.kernelName);
    });
  }
}

/**
 * After a differentiation threw, releases what tfjs's tape still holds. tfjs keeps the tensors
 * each taped op saved for its backward pass until the outermost tf.grads returns normally;
 * when an exception unwinds it instead (e.g. "gradient function not found"), they stay kept
 * forever. With no gradient in progress (depth 0) the tape is abandoned: dispose and drop it,
 * as tfjs does at the end of a successful tf.grads.
 */
export function releaseAbandonedTape(): void {
  const state = tf.engine().state;
  if (state.gradientDepth !== 0 || !state.activeTape) return;
  for (const node of state.activeTape) for (const t of node.saved ?? []) t.dispose();
  state.activeTape = null as unknown as typeof state.activeTape;
}
