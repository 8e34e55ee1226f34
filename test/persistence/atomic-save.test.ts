/**
 * save to a path is atomic: a child process saving an 8 MB PMatDense over and over, killed with
 * SIGKILL at several moments (before, during and between saves), always leaves a file that loads
 * whole (checksum valid) and holds one complete saved round. File-system errors of save and load
 * are PersistenceErrors naming the path; load reads only regular files no larger than maxBytes.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tf } from '../../src/tf.js';
import { LayerCollection, PMatDense, PMatDiag, PersistenceError, load, save, serialize } from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { mlp } from '../support/models.js';
import { bigModel } from './big-model.js';

before(async () => {
  await useTestBackend();
});

/**
 * Starts `script` with `args`; once it has printed `saved <i>` lines `after` times, waits
 * `delayMs` and kills it with SIGKILL. Resolves with the indices it reported.
 */
function runAndKill(script: string, args: string[], after: number, delayMs: number): Promise<number[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL(script, import.meta.url)), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const saved: number[] = [];
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    let buffer = '';
    let killing = false;
    const kill = () => {
      if (killing) return;
      killing = true;
      setTimeout(() => child.kill('SIGKILL'), delayMs);
    };
    if (after === 0) kill();
    child.stdout.on('data', (d: Buffer) => {
      buffer += d.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const l of lines) saved.push(Number(l.replace('saved ', '')));
      if (saved.length >= after) kill();
    });
    child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve(saved) : reject(new Error(`child exited with ${code}: ${stderr}`))));
  });
}

/** Loads `target` and returns the round held by the (constant) matrix, checking it is whole. */
async function roundIn(target: string, model: tf.LayersModel): Promise<number> {
  const n0 = tf.memory().numTensors;
  const loaded = (await load(target, model)) as PMatDense;
  const values = loaded.values();
  const k = values[0]!;
  assert.ok(values.every((x) => x === k), 'one whole round, never a mixture');
  loaded.dispose();
  assert.equal(tf.memory().numTensors, n0);
  return k;
}

test('a save killed with SIGKILL at several moments never damages the previous file', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nngeometry-atomic-'));
  const target = join(dir, 'fisher.nng');
  const model = bigModel();
  const lc = LayerCollection.fromModel(model);
  const d = lc.numel();
  // Round 0, written here: the previous file of the first child.
  const M0 = new PMatDense(lc, new Float64Array(d * d));
  await save(M0, target);
  M0.dispose();
  // The library's save in a child (tfjs, the 8 MB PMatDense built and serialized each round), killed in its third save.
  const saved = await runAndKill('./save-loop.child.ts', [target, '1'], 2, 20);
  const k = await roundIn(target, model);
  assert.ok(k === saved[saved.length - 1]! || k === saved[saved.length - 1]! + 1, `file holds round ${k}, last reported ${saved.at(-1)}`);
  // The same write path (save's writeSavedFile of the serialized bytes) in a light child, killed at many moments:
  // before its first write completes, and at offsets spread over later writes.
  const sources = [1, 2, 3].map((r) => {
    const M = new PMatDense(lc, new Float64Array(d * d).fill(10 + r));
    const file = join(dir, `source${r}.bin`);
    writeFileSync(file, serialize(M));
    M.dispose();
    return file;
  });
  let previous = k;
  for (const [after, delayMs] of [[0, 300], [0, 600], [1, 0], [1, 7], [2, 15], [3, 3], [4, 25], [5, 40]] as const) {
    const reported = await runAndKill('./write-loop.child.ts', [target, ...sources], after, delayMs);
    const now = await roundIn(target, model);
    const last = reported.length ? 11 + reported[reported.length - 1]! : previous;
    const next = reported.length ? 11 + ((reported[reported.length - 1]! + 1) % 3) : 11;
    assert.ok(now === last || now === next, `file holds round ${now}; last reported ${last}, next ${next}`);
    previous = now;
  }
  // Killed children leave their temporary files (never a damaged target): only dot-files next to it.
  assert.ok(readdirSync(dir).every((f) => f === 'fisher.nng' || f.startsWith('source') || (f.startsWith('.fisher.nng.') && f.endsWith('.tmp'))));
  model.dispose();
});

test('file-system errors are PersistenceErrors naming the path; load reads only regular files up to maxBytes', async () => {
  const model = mlp();
  const lc = LayerCollection.fromModel(model);
  const D = new PMatDiag(lc, new Float64Array(lc.numel()).fill(1));
  const dir = mkdtempSync(join(tmpdir(), 'nngeometry-fs-'));
  const missing = join(dir, 'no', 'such', 'folder', 'x.nng');
  await assert.rejects(() => save(D, missing), (e: Error) => e instanceof PersistenceError && e.message.includes(`cannot write '${missing}'`));
  await assert.rejects(() => save(D, dir), (e: Error) => e instanceof PersistenceError && e.message.includes(`cannot write '${dir}'`));
  await assert.rejects(() => load(join(dir, 'absent.nng'), model), (e: Error) => e instanceof PersistenceError && /cannot read '.*absent\.nng'/.test(e.message));
  await assert.rejects(() => load(dir, model), (e: Error) => e instanceof PersistenceError && /is not a regular file/.test(e.message));
  await assert.rejects(() => load('/dev/zero', model), (e: Error) => e instanceof PersistenceError && /'\/dev\/zero' is not a regular file/.test(e.message));
  const file = join(dir, 'd.nng');
  await save(D, file);
  await assert.rejects(() => load(file, model, { maxBytes: 100 }), (e: Error) => e instanceof PersistenceError && /more than maxBytes = 100/.test(e.message));
  const E = (await load(file, model)) as PMatDiag;
  assert.deepEqual(E.values(), D.values());
  writeFileSync(join(dir, 'junk.nng'), 'not a matrix');
  await assert.rejects(() => load(join(dir, 'junk.nng'), model), (e: Error) => e instanceof PersistenceError && /not an nngeometry file/.test(e.message));
  [D, E].forEach((m) => m.dispose());
  model.dispose();
});
