/**
 * The decoder's fast paths check exactly what the plain definitions check: the word-wise
 * CRC-32C equals a bit-at-a-time CRC-32C written from the definition (reflected polynomial
 * 0x82F63B78) at every alignment and length, and the one-pass finiteness probe refuses every
 * NaN and ±∞, in float64 and float32 arrays, at every position class, naming its index, while
 * every finite value (−0, subnormals, ±the largest) loads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32c } from '../../src/persistence/crc32c.js';
import { PersistenceError, decode, encode } from '../../src/persistence/format.js';

/** CRC-32C one bit at a time, from the definition. */
function crcReference(bytes: Uint8Array, previous = 0): number {
  let c = ~previous >>> 0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

function randomBytes(n: number, seed: number): Uint8Array {
  let s = seed;
  return Uint8Array.from({ length: n }, () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 24);
}

test('CRC-32C: the word-wise loop equals the bit-at-a-time definition at every byte offset (0–7) and length (0–80), chained at every split', () => {
  const buffer = randomBytes(128, 7);
  for (let offset = 0; offset < 8; offset++) {
    for (let length = 0; length <= 80; length++) {
      const b = buffer.subarray(offset, offset + length);
      const want = crcReference(b);
      assert.equal(crc32c(b), want, `offset ${offset}, length ${length}`);
      for (const split of [1, 3, 8, Math.floor(length / 2)]) {
        if (split > length) continue;
        assert.equal(crc32c(b.subarray(split), crc32c(b.subarray(0, split))), want, `offset ${offset}, length ${length}, split ${split}`);
      }
    }
  }
});

test('CRC-32C: 1 MB of random bytes at offsets 0–3 and one flipped bit anywhere changes it', () => {
  const big = randomBytes((1 << 20) + 11, 3);
  for (let offset = 0; offset < 4; offset++) {
    const b = big.subarray(offset, offset + (1 << 20) + offset);
    assert.equal(crc32c(b), crcReference(b), `offset ${offset}`);
  }
  const b = big.subarray(1, (1 << 20) + 1);
  const before = crc32c(b);
  for (const at of [0, 3, 4, 7, 8, 12345, b.length - 9, b.length - 1]) {
    for (const bit of [0, 7]) {
      b[at]! ^= 1 << bit;
      assert.notEqual(crc32c(b), before, `flip of bit ${bit} of byte ${at}`);
      b[at]! ^= 1 << bit;
    }
  }
  assert.equal(crc32c(b), before);
});

test('decode: every NaN and ±∞ in a float64 or float32 array is refused naming the array and its index; every finite value loads', () => {
  for (const [dtype, Make] of [['float64', Float64Array], ['float32', Float32Array]] as const) {
    const length = 37;
    for (const at of [0, 1, 17, length - 1]) {
      for (const bad of [NaN, Infinity, -Infinity]) {
        const values = new Make(length);
        for (let i = 0; i < length; i++) values[i] = Math.sin(i);
        values[at] = bad;
        // A second bad value later: the first one is named.
        if (at + 5 < length) values[at + 5] = NaN;
        const bytes = encode('PMatDiag', [], { meta: {}, arrays: { ok: new Float64Array(3), x: values } });
        assert.throws(() => decode(bytes), (e: Error) => e instanceof PersistenceError && new RegExp(`array 'x' holds ${bad} at index ${at};`).test(e.message), `${dtype} ${bad} at ${at}`);
      }
    }
    const edge = dtype === 'float64' ? [-0, Number.MIN_VALUE, -Number.MAX_VALUE, Number.MAX_VALUE, 1e-310] : [-0, 1e-45, -3.4028234663852886e38, 3.4028234663852886e38, 1e-40];
    const finite = Make.from(edge);
    const decoded = decode(encode('PMatDiag', [], { meta: {}, arrays: { x: finite } }));
    assert.deepEqual(decoded.state.arrays.x, finite, `${dtype}: the extreme finite values load unchanged`);
    assert.ok(Object.is(decoded.state.arrays.x![0], -0));
  }
});
