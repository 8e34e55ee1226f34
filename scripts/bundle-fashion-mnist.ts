/**
 * `npm run bundle-data`: copies the first 2,000 Fashion-MNIST *test* images and labels from
 * Debian's `dataset-fashion-mnist` package (/usr/share/datasets/fashion-mnist) into
 * data/fashion-mnist/ as gzipped IDX files (~0.9 MB). Deterministic: gzip level 9, no mtime
 * (Node's zlib writes none), so a rerun reproduces the committed bytes.
 *
 * Usage: tsx scripts/bundle-fashion-mnist.ts [--source DIR] [--count 2000]
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { encodeIdxUint8, parseIdx } from '../src/cli/idx.js';

const { values } = parseArgs({ options: { source: { type: 'string', default: '/usr/share/datasets/fashion-mnist' }, count: { type: 'string', default: '2000' } } });
const source = values.source!;
const count = Number(values.count);
const out = join(import.meta.dirname, '..', 'data', 'fashion-mnist');

function read(name: string) {
  const path = join(source, name);
  if (!existsSync(path)) {
    console.error(`${path} not found: install Debian's package with 'apt-get install dataset-fashion-mnist' or pass --source DIR`);
    process.exit(2);
  }
  return parseIdx(gunzipSync(readFileSync(path)), path);
}

const images = read('t10k-images-idx3-ubyte.gz');
const labels = read('t10k-labels-idx1-ubyte.gz');
const [, h, w] = images.shape as [number, number, number];
const imageBytes = (images.data as Uint8Array).subarray(0, count * h * w);
const labelBytes = (labels.data as Uint8Array).subarray(0, count);
writeFileSync(join(out, 'test-images-idx3-ubyte.gz'), gzipSync(encodeIdxUint8([count, h, w], imageBytes), { level: 9 }));
writeFileSync(join(out, 'test-labels-idx1-ubyte.gz'), gzipSync(encodeIdxUint8([count], labelBytes), { level: 9 }));
const histogram = Array.from({ length: 10 }, (_, c) => labelBytes.filter((y) => y === c).length);
console.log(`wrote ${count} images [${h}×${w}] and labels to ${out}; examples per class: ${histogram.join(' ')}`);
