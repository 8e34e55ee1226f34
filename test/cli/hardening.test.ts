/**
 * The CLI as a child process against hostile or mistaken inputs: a model.json naming files
 * outside its folder, weight files of the wrong length, outputs into a missing folder or onto a
 * folder, out-of-range flags and labels, malformed data. Each is one line on stderr with exit
 * code 2, and the output checks happen before any computation (nothing on stdout).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '../../src/tf.js';
import { saveModel } from '../../src/cli/model-io.js';
import { useTestBackend } from '../support/backend.js';
import { main } from '../../src/cli/main.js';
import { IMAGES, MLP, runCli, type CliResult } from './support.js';

/** `nngeometry ...args` in this process (main() with console output captured): the same code path, without a process start per case. */
async function runInProcess(args: string[]): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => void out.push(`${a.join(' ')}\n`);
  console.error = (...a: unknown[]) => void err.push(`${a.join(' ')}\n`);
  try {
    const code = await main(args);
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    [console.log, console.error] = [log, error];
  }
}

const dir = mkdtempSync(join(tmpdir(), 'nngeometry-hardening-'));

test('hostile model files, bad outputs, flags, labels and data: one line, exit code 2, nothing computed', async () => {
  await useTestBackend('cpu');
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 3, inputShape: [2], kernelInitializer: tf.initializers.randomNormal({ seed: 1 }) })] });
  const good = await saveModel(model, join(dir, 'good'));
  model.dispose();
  const json = JSON.parse(readFileSync(good, 'utf8')) as tf.io.ModelJSON;
  const weights = readFileSync(join(dir, 'good', 'weights.bin'));
  const variant = (name: string, paths: string[], bytes: Uint8Array | null = weights) => {
    mkdirSync(join(dir, name));
    writeFileSync(join(dir, name, 'model.json'), JSON.stringify({ ...json, weightsManifest: [{ ...json.weightsManifest[0]!, paths }] }));
    if (bytes) writeFileSync(join(dir, name, 'weights.bin'), bytes);
    return join(dir, name, 'model.json');
  };
  const traversal = variant('traversal', ['../../../../../../etc/passwd'], null);
  const absolute = variant('absolute', ['/etc/passwd'], null);
  const device = variant('device', ['weights.bin'], null);
  const { symlinkSync } = await import('node:fs');
  symlinkSync('/dev/zero', join(dir, 'device', 'weights.bin'));
  const longer = variant('longer', ['weights.bin']);
  appendFileSync(join(dir, 'longer', 'weights.bin'), new Uint8Array(8));
  mkdirSync(join(dir, 'nomanifest'));
  writeFileSync(join(dir, 'nomanifest', 'model.json'), JSON.stringify({ modelTopology: json.modelTopology }));
  const csv = join(dir, 'x.csv');
  writeFileSync(csv, 'a,b\n1,2\n3,4\n');
  const labels = (name: string, text: string) => (writeFileSync(join(dir, name), text), join(dir, name));
  const fim = (...args: string[]) => ['fim', '--model', good, '--data', csv, '--backend', 'cpu', ...args];
  const cases: Array<[string, string[], RegExp]> = [
    ["'../' in the manifest (info)", ['info', '--model', traversal], /weights path '\.\.\/\.\.\/.*passwd' contains '\.\.'/],
    ['an absolute path in the manifest (fim)', fim('--model', absolute), /weights path '\/etc\/passwd' is absolute/],
    ['a symlink to /dev/zero', ['info', '--model', device], /leads out of the folder/],
    ['a weight file longer than the manifest', ['info', '--model', longer], /hold 44 bytes but its manifest describes 36/],
    ['a model.json without weights', ['info', '--model', join(dir, 'nomanifest', 'model.json')], /no weights in its 'weightsManifest'/],
    ['--json into a missing folder', fim('--json', join(dir, 'missing', 'out.json')), /--json: the folder .*missing does not exist/],
    ['--report onto a folder', fim('--report', dir), /--report: .* is a folder; give a file name/],
    ['info --json into a missing folder', ['info', '--model', good, '--json', join(dir, 'missing', 'i.json')], /--json: the folder .*missing does not exist/],
    ['ntk --json onto a folder', ['ntk', '--model', good, '--data', csv, '--backend', 'cpu', '--json', dir], /--json: .* is a folder/],
    ['--mc 1e9', fim('--mc', '1e9'), /--mc must be a positive integer in \[1, 10000\], received '1e9'/],
    ['--count 0x10', fim('--count', '0x10'), /--count must be a positive integer/],
    ['--seed NaN', fim('--seed', 'NaN'), /--seed must be an integer in \[0, 4294967295\]/],
    ['--scale Infinity', fim('--scale', 'Infinity'), /--scale must be a decimal number/],
    ['a label equal to the class count', fim('--variant', 'empirical', '--labels', labels('l3.csv', '0\n3\n')), /label 1 is 3, but the model has 3 outputs, so labels are class indices in \[0, 3\)/],
    ['a negative label', fim('--variant', 'empirical', '--labels', labels('lneg.csv', '-1\n0\n')), /label 0 is -1; labels are class indices/],
    ['a fractional label', fim('--variant', 'empirical', '--labels', labels('lfrac.csv', '0\n2.7\n')), /label 1 is 2\.7/],
    ['labels for another number of examples', fim('--variant', 'empirical', '--labels', labels('l1.csv', '0\n')), /1 labels in .* for 2 examples/],
    ['an empty cell', fim('--data', labels('empty.csv', '1,2\n3,\n')), /row 2, column 2 is empty/],
    ['a one-row CSV with a typo', fim('--data', labels('typo.csv', '1,2x\n')), /row 1, column 2 "2x" is not a decimal number/],
    ['ragged JSON', fim('--data', labels('ragged.json', '[[1, 2], [3]]')), /example 1 has shape \[1\] but example 0 has \[2\]/],
  ];
  const results: CliResult[] = [];
  for (const [, args] of cases) results.push(await runInProcess(args));
  results.forEach((r, i) => {
    const [name, , pattern] = cases[i]!;
    assert.equal(r.code, 2, `${name}: exit code (stderr: ${r.stderr})`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${name}: one line, got ${JSON.stringify(r.stderr)}`);
    assert.match(lines[0]!, /^nngeometry: /, name);
    assert.match(lines[0]!, pattern, name);
    assert.equal(r.stdout, '', `${name}: nothing computed or printed before the error`);
  });
});

test('as a process: a manifest reaching out of the folder and --json into a missing folder exit with 2 before computing; a good run writes --json atomically', async () => {
  writeFileSync(join(dir, 'escape.json'), readFileSync(MLP, 'utf8').replace(/"paths":\s*\[[^\]]*\]/, '"paths":["../../../etc/passwd"]'));
  const [escape, missing] = await Promise.all([
    runCli(['info', '--model', join(dir, 'escape.json')]),
    runCli(['fim', '--model', MLP, '--data', IMAGES, '--count', '10', '--json', join(dir, 'missing', 'x.json')]),
  ]);
  for (const [r, pattern] of [[escape, /contains '\.\.'/], [missing, /--json: the folder .*missing does not exist/]] as const) {
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.equal(r.stdout, '');
  }
  const json = join(dir, 'ok.json');
  const r = await runCli(['info', '--model', MLP, '--json', json]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(readFileSync(json, 'utf8')).parameters > 0, true);
  const { readdirSync } = await import('node:fs');
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temporary file left');
});
