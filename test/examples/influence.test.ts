import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '../../src/tf.js';
import { useTestBackend } from '../support/backend.js';
import { run } from '../../examples/influence.js';

before(async () => {
  await useTestBackend();
});

test('influence example: helpful images mostly share the test label, scores ordered, a self-contained page', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'nngeometry-influence-'));
  try {
    const before = tf.memory().numTensors;
    const out = join(dir, 'influence.html');
    const r = await run({ small: true, out, log: () => {} });
    assert.equal(tf.memory().numTensors, before);
    assert.equal(r.examples.length, 3);
    assert.ok(r.helpfulSameLabel >= 0.5, `same-label fraction ${r.helpfulSameLabel}`);
    for (const e of r.examples) {
      assert.ok(e.helpful[0]!.score > 0 && e.harmful[0]!.score < 0, 'helpful scores positive, harmful negative');
      for (let k = 1; k < 5; k++) {
        assert.ok(e.helpful[k - 1]!.score >= e.helpful[k]!.score);
        assert.ok(e.harmful[k - 1]!.score <= e.harmful[k]!.score);
      }
    }
    const html = await readFile(out, 'utf8');
    assert.equal(html, r.html);
    assert.equal((html.match(/<img src="data:image\/png;base64,/g) ?? []).length, 3 * 11);
    assert.ok(!/https?:\/\//.test(html), 'nothing fetched');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
