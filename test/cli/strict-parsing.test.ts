/**
 * The CLI's data files and flags in-process: the strict CSV/JSON grammar (every bad token names
 * its row and column, a header is recognised by rule), labels as class indices, bounded flags,
 * output targets checked before computing, and gzip input inflated only as far as needed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { readExamples, readLabels, isHeaderRow } from '../../src/cli/data-io.js';
import { encodeIdxUint8 } from '../../src/cli/idx.js';
import { MAX_IDX_BYTES } from '../../src/cli/bounded-read.js';
import { parseDecimal } from '../../src/cli/decimal.js';
import { boundedFlag, numberFlag } from '../../src/cli/flags.js';
import { checkOutputFiles, writeOutputFile, writeOutputFileSync } from '../../src/cli/output-file.js';
import { CliError } from '../../src/cli/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'nngeometry-strict-'));
let k = 0;
/** A file holding `text` (gzipped when `gz`), with a fresh name. */
function file(text: string | Uint8Array, ext = 'csv', gz = false): string {
  const path = join(dir, `f${k++}.${ext}${gz ? '.gz' : ''}`);
  writeFileSync(path, gz ? gzipSync(text) : text);
  return path;
}

test('decimal grammar: plain decimal literals only', () => {
  for (const [token, value] of [['1', 1], ['-2.5', -2.5], ['+.5', 0.5], ['3.', 3], ['1e-3', 1e-3], ['-4E2', -400], ['0', 0]] as const) assert.equal(parseDecimal(token), value, token);
  for (const token of ['', ' ', '0x10', '0b1', '0o7', 'NaN', 'Infinity', '-Infinity', '1_000', '1e', '.', '--1', '1,5', '1e39', '2 3', 'e5']) assert.equal(parseDecimal(token), undefined, JSON.stringify(token));
});

test('CSV: every bad cell is an error naming its row and column (an empty cell is not 0, 0x10 is not 16)', async () => {
  const cases: Array<[string, RegExp]> = [
    ['1,2\n3,\n', /row 2, column 2 is empty/],
    ['1,2\n3,0x10\n', /row 2, column 2 "0x10" is not a decimal number/],
    ['1,2\nNaN,4\n', /row 2, column 1 "NaN" is not a decimal number/],
    ['1,Infinity\n', /row 1, column 2 "Infinity" is not a decimal number/],
    ['1,2\n3,1e39\n', /row 2, column 2 1e39 is beyond the float32 range/],
    ['a,b\n1,2\n\n3,4\n', /row 3 is empty; blank lines are allowed only at the end/],
    ['1,2\n3\n', /row 2 has 1 columns, row 1 \(the first data row\) has 2/],
    ['x,y\n1;2\n', /row 2, column 1 "1;2" is not a decimal number/],
    // A first row with an empty cell or NaN is data (and an error), not a silently skipped header.
    ['1,,3\n4,5,6\n', /row 1, column 2 is empty/],
    ['NaN,1\n2,3\n', /row 1, column 1 "NaN" is not a decimal number/],
    // A one-row file with a typo names the cell, not "no data rows".
    ['1,2x,3\n', /row 1, column 2 "2x" is not a decimal number/],
    ['a,b\n', /has a header row \(a,b\) but no data rows/],
    ['\n\n', /is empty/],
  ];
  for (const [text, pattern] of cases) {
    await assert.rejects(() => readExamples(file(text), '--data'), (e: Error) => e instanceof CliError && pattern.test(e.message) && e.message.startsWith('--data: '), `${JSON.stringify(text)} → ${pattern}`);
  }
});

test('CSV: a header is recognised by rule; spaces, CRLF, ; and tab separators, trailing blank lines', async () => {
  assert.ok(isHeaderRow(['x1', 'pixel_2', '"label"', 'a.b', 'f(x)']));
  for (const row of [['x', ''], ['NaN', 'y'], ['inf', 'x'], ['1a', 'b'], ['x', '2']]) assert.ok(!isHeaderRow(row), row.join(','));
  const a = await readExamples(file('x,y\r\n 1 , 2\r\n3.5,-4e0\r\n\r\n'), '--data');
  assert.deepEqual([a.n, a.total, a.exampleShape, Array.from(a.values)], [2, 2, [2], [1, 2, 3.5, -4]]);
  const b = await readExamples(file('1;2\n3;4\n'), '--data');
  assert.deepEqual(Array.from(b.values), [1, 2, 3, 4]);
  const c = await readExamples(file('1\t2\n3\t4\n'), '--data');
  assert.deepEqual(Array.from(c.values), [1, 2, 3, 4]);
  const single = await readExamples(file('label\n3\n1\n'), '--data');
  assert.deepEqual([single.exampleShape, Array.from(single.values)], [[], [3, 1]]);
  const counted = await readExamples(file('1,2\n3,4\n5,6\n', 'csv', true), '--data', 2);
  assert.deepEqual([counted.n, counted.total, Array.from(counted.values)], [2, 3, [1, 2, 3, 4]]);
});

test('JSON: numbers only, every example of one shape; ragged or string values name the example', async () => {
  const cases: Array<[unknown, RegExp]> = [
    [[[1, 2], [3]], /example 1 has shape \[1\] but example 0 has \[2\]/],
    [[[[1, 2], [3, 4]], [[1, 2], [3]]], /example 1 is ragged: example 1\[1\] has shape \[1\] but example 1\[0\] has \[2\]/],
    [[[1, 2], [3, '0x10']], /example 1, value 1 is the string "0x10", not a number/],
    [[1, null], /example 1 is null, not a number/],
    [[[1, []]], /example 0\[1\] is an empty array/],
    [{ xs: [[1]], ys: [0], extra: 1 }, /unknown key 'extra'/],
    [{ xs: [[1], [2]], ys: [0] }, /"ys" must be an array with one label per example \(2\)/],
    [[], /non-empty array of examples/],
  ];
  for (const [value, pattern] of cases) {
    await assert.rejects(() => readExamples(file(JSON.stringify(value), 'json'), '--data'), pattern, `${JSON.stringify(value)} → ${pattern}`);
  }
  for (const text of ['[1, NaN]', '[0x10]', '[Infinity]', '[1,]']) await assert.rejects(() => readExamples(file(text, 'json'), '--data'), /not valid JSON/, text);
  await assert.rejects(() => readExamples(file('[1e39]', 'json'), '--data'), /example 0 is 1e\+39, beyond the float32 range/);
  const ok = await readExamples(file(JSON.stringify({ xs: [[[1, 2]], [[3, 4]]], ys: [1, 0] }), 'json'), '--data');
  assert.deepEqual([ok.n, ok.exampleShape, Array.from(ok.values), Array.from(ok.labels!)], [2, [1, 2], [1, 2, 3, 4], [1, 0]]);
});

test('labels: integers ≥ 0 from CSV, JSON and IDX; 2.7 and -1 are errors naming the label', async () => {
  assert.deepEqual(Array.from((await readLabels(file('3\n1\n'))).labels), [3, 1]);
  assert.deepEqual(Array.from((await readLabels(file(JSON.stringify([0, 2]), 'json'))).labels), [0, 2]);
  const idx = await readLabels(file(encodeIdxUint8([5], Uint8Array.from([9, 8, 7, 6, 5])), 'idx', true), 2);
  assert.deepEqual([Array.from(idx.labels), idx.total], [[9, 8], 5]);
  await assert.rejects(() => readLabels(file('1\n2.7\n')), /label 1 is 2\.7\d*; labels are class indices, integers ≥ 0/);
  await assert.rejects(() => readLabels(file('-1\n2\n')), /label 0 is -1; labels are class indices/);
  await assert.rejects(() => readLabels(file('1,2\n')), /one label per example, found \[2\]/);
  await assert.rejects(() => readLabels(file(encodeIdxUint8([0], new Uint8Array(0)), 'idx')), /holds no examples \(its IDX header says \[0\]\)/);
});

test('flags: decimal literals within documented bounds', () => {
  assert.equal(boundedFlag('100', '--mc'), 100);
  assert.equal(boundedFlag(undefined, '--seed', 0), 0);
  assert.equal(boundedFlag('1e3', '--count'), 1000);
  for (const [value, name, pattern] of [
    ['1e9', '--mc', /--mc must be a positive integer in \[1, 10000\], received '1e9'/],
    ['0', '--batch-size', /--batch-size must be a positive integer in \[1, 65536\]/],
    ['0x10', '--count', /--count must be a positive integer/],
    ['2.5', '--top', /--top must be a positive integer/],
    ['-1', '--seed', /--seed must be an integer in \[0, 4294967295\]/],
    ['', '--mc', /--mc must be/],
  ] as const) {
    assert.throws(() => boundedFlag(value, name), (e: Error) => e instanceof CliError && pattern.test(e.message), `${name} ${value}`);
  }
  assert.equal(numberFlag('0.5', '--scale', 'a number'), 0.5);
  assert.throws(() => numberFlag('Infinity', '--scale', 'a decimal number'), /--scale must be a decimal number, received 'Infinity'/);
  assert.throws(() => numberFlag('0', '--sigma2', 'a decimal number > 0', (x) => x > 0), /--sigma2 must be a decimal number > 0/);
});

test('output files: a missing folder, a folder as target, two flags on one file are refused before computing; writes are atomic', async () => {
  const folder = join(dir, 'out');
  mkdirSync(folder);
  assert.throws(() => checkOutputFiles({ '--json': join(dir, 'missing', 'x.json') }), /--json: the folder .*missing does not exist/);
  assert.throws(() => checkOutputFiles({ '--report': folder }), /--report: .*out is a folder; give a file name/);
  assert.throws(() => checkOutputFiles({ '--json': join(file('x', 'txt'), 'y.json') }), /is not a folder/);
  assert.throws(() => checkOutputFiles({ '--json': join(folder, 'a'), '--report': join(folder, '.', 'a') }), /--report and --json name the same file/);
  assert.throws(() => checkOutputFiles({ '--json': '/dev/null' }), /exists and is not a regular file/);
  checkOutputFiles({ '--json': join(folder, 'a.json'), '--report': join(folder, 'a.html') });
  await writeOutputFile(join(folder, 'a.json'), '--json', '{"a":1}\n');
  writeOutputFileSync(join(folder, 'b.json'), '--json', '{"b":2}\n');
  const { readdirSync, readFileSync } = await import('node:fs');
  assert.deepEqual(readdirSync(folder).sort(), ['a.json', 'b.json'], 'no temporary file left');
  assert.equal(readFileSync(join(folder, 'b.json'), 'utf8'), '{"b":2}\n');
  assert.throws(() => writeOutputFileSync(join(dir, 'missing', 'c.json'), '--json', 'x'), /--json: could not write/);
});

/** A gzip file whose IDX header claims `n` 28×28 uint8 images, inflating to ~`members` × 64 MiB of zeros. */
function gzipBomb(n: number, members: number): string {
  const header = encodeIdxUint8([1, 28, 28], new Uint8Array(784)).subarray(0, 16);
  new DataView(header.buffer, header.byteOffset).setUint32(4, n, false);
  const zeros = gzipSync(new Uint8Array(64 * 1024 * 1024), { level: 9 });
  const parts = [gzipSync(header), ...Array.from({ length: members }, () => zeros)];
  const path = join(dir, `bomb${k++}.idx.gz`);
  writeFileSync(path, Buffer.concat(parts));
  return path;
}

test('gzip bombs: --count 10 of a 3.2 GB IDX stops after 10 examples; the whole of it is refused from its header; a stream longer than its header is stopped', async () => {
  const bomb = gzipBomb(4_000_000, 48); // header: 4e6 × 784 B = 3.1 GB; the stream: 3.2 GB of zeros in ~3 MB
  const before = process.memoryUsage();
  const t0 = performance.now();
  const ten = await readExamples(bomb, '--data', 10);
  const seconds = (performance.now() - t0) / 1000;
  const grown = process.memoryUsage().arrayBuffers - before.arrayBuffers;
  assert.deepEqual([ten.n, ten.total, ten.exampleShape, ten.values.length], [10, 4_000_000, [28, 28], 7840]);
  assert.ok(seconds < 5, `${seconds} s`);
  assert.ok(grown < 64 * 1024 * 1024, `array buffers grew by ${grown} bytes`);
  assert.ok(4_000_000 * 784 > MAX_IDX_BYTES);
  await assert.rejects(() => readExamples(bomb, '--data'), /holds \[4000000,28,28\] uint8 by its IDX header; reading 4,000,000 examples needs 3\.1 GB, more than the 1\.1 GB limit; pass a smaller --count/);
  // The header claims 20 images (15,696 bytes); the stream goes on for 128 MiB more.
  const liar = gzipBomb(20, 2);
  await assert.rejects(() => readExamples(liar, '--data'), /is longer than its IDX header says \(\[20,28,28\] uint8, 15696 bytes\)/);
  // A prefix of it is read without looking further (the header and 10 images).
  const firstTen = await readExamples(liar, '--data', 10);
  assert.deepEqual([firstTen.n, firstTen.total], [10, 20]);
});

test('only regular files are read: a fifo or a folder as --data is refused', async () => {
  await assert.rejects(() => readExamples(dir, '--data'), /--data: not a regular file/);
  await assert.rejects(() => readExamples('/dev/zero', '--data'), /--data: not a regular file: \/dev\/zero/);
  await assert.rejects(() => readExamples(join(dir, 'none.csv'), '--labels'), /--labels: file not found/);
});
