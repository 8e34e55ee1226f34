/**
 * The tests' independent reference for the engine's backward pass: a backward scheme
 * (`PassSpec.backward`) that back-propagates each square-root output on its own by tfjs autodiff
 * of the whole model — a forward pass for the layer inputs and the cotangents, then one
 * `tf.grads` per output with respect to zero probes added to the collected layers'
 * pre-activations (tfjs re-runs the forward pass inside each). It shares no backward rule with
 * the default batched scheme (hand-written rules, outputs stacked along the batch axis), so
 * equal matrices from both check those rules.
 */
import { tf } from '../../src/tf.js';
import type { BackwardScheme } from '../../src/engine.js';

export const autodiffScheme: BackwardScheme = {
  name: 'autodiff',
  backward(batch) {
    const lc = batch.layerCollection;
    const b = batch.batchSize;
    const inputs = new Map<string, tf.Tensor>();
    const shapes = new Map<string, number[]>();
    let cotangents: tf.Tensor3D | undefined;
    try {
      cotangents = tf.tidy(() => {
        const f = batch.forward({
          onLayer: (e, x, s) => {
            inputs.set(e.id, tf.keep(x.clone()));
            shapes.set(e.id, s.shape);
          },
        });
        return batch.cotangents(f);
      });
      const numOutputs = cotangents.shape[0];
      for (let o = 0; o < numOutputs; o++) {
        tf.tidy(() => {
          const cot = tf.squeeze(tf.slice(cotangents!, [o, 0, 0], [1, -1, -1]), [0]);
          const probes = lc.layers.map((e) => tf.zeros(shapes.get(e.id)!));
          // An exception thrown inside tf.grads would abandon the tape and its saved tensors:
          // errors are caught here, the pass finishes on a zero objective, then they are rethrown.
          let failure: unknown;
          const grads = tf.grads((...p: tf.Tensor[]) => {
            try {
              const out = batch.forward({ probes: new Map(lc.layers.map((e, i) => [e.id, p[i]!])) });
              return tf.sum(tf.mul(out.reshape([b, -1]), cot));
            } catch (e) {
              failure = e;
              return tf.addN(p.map((t) => tf.sum(tf.mul(t, 0)))) as tf.Scalar;
            }
          })(probes);
          if (failure !== undefined) throw failure;
          batch.deliver({ inputs, grads: new Map(lc.layers.map((e, i) => [e.id, grads[i]!])), firstOutput: o, count: 1, numOutputs });
        });
      }
      return numOutputs;
    } finally {
      tf.dispose([...inputs.values()]);
      cotangents?.dispose();
    }
  },
};
