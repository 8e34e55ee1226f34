/**
 * LayerCollection: parameter order = model.trainableWeights order (nested models in place),
 * offsets, equality, merge/intersect, the generic fallback and clear errors for unsupported layers.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { LayerCollection } from '../../src/layers/layer-collection.js';
import { UnsupportedLayerError, InvalidArgumentError, LayerCollectionMismatchError } from '../../src/errors.js';
import { useTestBackend } from '../support/backend.js';
import { cnn, mlp, nested, residual } from '../support/models.js';
import { ScaledTanh } from '../support/layer-models.js';

before(async () => {
  await useTestBackend();
});

test('parameter order and sizes follow model.trainableWeights, nested models expanded in place', () => {
  for (const model of [mlp(), cnn(), residual(), nested()]) {
    const lc = LayerCollection.fromModel(model);
    const fromCollection = lc.layers.flatMap((e) => e.layer.trainableWeights.map((w) => w.name));
    assert.deepEqual(fromCollection, model.trainableWeights.map((w) => w.name));
    assert.equal(lc.numel(), model.trainableWeights.reduce((a, w) => a + w.shape.reduce((x: number, y) => x * (y as number), 1), 0));
    let offset = 0;
    for (const e of lc.layers) {
      assert.equal(e.offset, offset);
      offset += e.numel;
    }
    model.dispose();
  }
});

test('nested layers get ids prefixed by the enclosing model', () => {
  const model = nested();
  const ids = LayerCollection.fromModel(model).ids();
  assert.equal(ids.length, 4);
  assert.ok(ids[1]!.includes('/') && ids[2]!.includes('/'), `ids: ${ids.join(', ')}`);
  model.dispose();
});

test('a layer without a specific kind uses the generic kind by default; with generic: false it is refused with its name and class, or skipped on request', () => {
  const m = tf.sequential();
  m.add(tf.layers.dense({ units: 4, inputShape: [3] }));
  m.add(new ScaledTanh(3));
  m.add(tf.layers.dense({ units: 2 }));
  const custom = m.layers[1]!;
  const lc = LayerCollection.fromModel(m);
  assert.deepEqual(lc.layers.map((e) => e.kind.name), ['dense', 'generic', 'dense']);
  assert.equal(lc.numel(), 3 * 4 + 4 + 4 * 3 + 3 + 3 * 2 + 2);
  assert.throws(
    () => LayerCollection.fromModel(m, { generic: false }),
    (e: Error) => e instanceof UnsupportedLayerError && e.message.includes(custom.name) && /ScaledTanhForTests/.test(e.message) && /ignoreUnsupported/.test(e.message),
  );
  const skipped = LayerCollection.fromModel(m, { generic: false, ignoreUnsupported: true });
  assert.equal(skipped.layers.length, 2);
  assert.equal(skipped.numel(), 3 * 4 + 4 + 3 * 2 + 2);
  assert.equal(LayerCollection.fromLayers(m, [custom]).layers[0]!.kind.name, 'generic');
  assert.throws(() => LayerCollection.fromLayers(m, [custom], { generic: false }), UnsupportedLayerError);
  m.dispose();
});

test('a custom layer with trainable weights and two inputs is refused by the generic kind, or skipped with ignoreUnsupported', () => {
  class Bilinear extends tf.layers.Layer {
    static className = 'BilinearForTests';
    private w!: tf.LayerVariable;
    override build(): void {
      this.w = this.addWeight('w', [3, 3], 'float32', tf.initializers.ones());
      this.built = true;
    }
    override computeOutputShape(shape: tf.Shape | tf.Shape[]): tf.Shape {
      return (shape as tf.Shape[])[0]!;
    }
    override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
      const [a, b] = inputs as tf.Tensor[];
      return tf.mul(tf.matMul(a!, this.w.read()), b!);
    }
  }
  const a = tf.input({ shape: [3] });
  const b = tf.input({ shape: [3] });
  const joined = new Bilinear({ name: 'bilinear_two_inputs' }).apply([a, b]) as tf.SymbolicTensor;
  const model = tf.model({ inputs: [a, b], outputs: tf.layers.dense({ units: 2 }).apply(joined) as tf.SymbolicTensor });
  assert.throws(() => LayerCollection.fromModel(model), (e: Error) => e instanceof UnsupportedLayerError && /bilinear_two_inputs/.test(e.message) && /2 input/.test(e.message));
  assert.deepEqual(LayerCollection.fromModel(model, { ignoreUnsupported: true }).layers.map((e) => e.kind.name), ['dense']);
  model.dispose();
});

test('a stateful RNN is refused by the generic kind (each call would advance its state)', () => {
  const m = tf.sequential();
  m.add(tf.layers.simpleRNN({ units: 2, stateful: true, batchInputShape: [2, 3, 2], name: 'stateful_rnn' }));
  assert.throws(() => LayerCollection.fromModel(m), (e: Error) => e instanceof UnsupportedLayerError && /stateful_rnn/.test(e.message) && /stateful/.test(e.message));
  m.dispose();
});

test('channelsFirst Conv2D falls back to the generic kind, or is refused with the way out when generic: false', () => {
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ filters: 2, kernelSize: 2, inputShape: [2, 5, 5], dataFormat: 'channelsFirst', name: 'cf_conv' }));
  assert.equal(LayerCollection.fromModel(m).layers[0]!.kind.name, 'generic');
  assert.throws(() => LayerCollection.fromModel(m, { generic: false }), (e: Error) => e instanceof UnsupportedLayerError && /cf_conv/.test(e.message) && /channelsLast/.test(e.message));
  m.dispose();
});

test('non-trainable layers are left out', () => {
  const m = mlp();
  m.layers[0]!.trainable = false;
  const lc = LayerCollection.fromModel(m);
  assert.equal(lc.layers.length, 1);
  assert.equal(lc.layers[0]!.offset, 0);
  m.dispose();
});

test('equality, merge (union) and intersect', () => {
  const m = mlp();
  const all = LayerCollection.fromModel(m);
  const [first, second] = all.ids();
  const a = LayerCollection.fromLayers(m, [first!]);
  const b = LayerCollection.fromLayers(m, [second!]);
  assert.ok(all.equals(LayerCollection.fromModel(m)));
  assert.ok(!a.equals(all));
  assert.ok(a.merge(b).equals(all));
  assert.ok(all.intersect(b).equals(b));
  assert.equal(a.merge(b).get(second!).offset, a.numel());
  // The union follows the model's parameter order whichever side it is called on.
  assert.ok(b.merge(a).equals(all), `b.merge(a) is [${b.merge(a).ids().join(', ')}], expected [${all.ids().join(', ')}]`);
  assert.equal(b.merge(a).get(second!).offset, a.numel());
  assert.throws(() => a.assertSame(all, 'x'), LayerCollectionMismatchError);
  assert.throws(() => LayerCollection.fromLayers(m, ['nope']), InvalidArgumentError);
  m.dispose();
});

test('layersOf refuses a model of another architecture', () => {
  const a = mlp();
  const b = cnn();
  assert.throws(() => LayerCollection.fromModel(a).layersOf(b), LayerCollectionMismatchError);
  a.dispose();
  b.dispose();
});
