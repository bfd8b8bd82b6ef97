import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { blobSource, bytesSource } from '../../src/io/byte-source.js';
import { IoError } from '../../src/io/errors.js';
import { elementCount, hostTensorBytes, hostTensorFromBytes, tensorByteLength, toFloat32 } from '../../src/io/host-tensor.js';
import { toFloat16Array } from '../../src/tensor/f16.js';
import { expectError } from './support.js';

test('f16 decoding is exact for all 65 536 bit patterns', () => {
  const bits = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const values = toFloat32({ dtype: 'f16', shape: [65536], data: bits });
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    const expected =
      exponent === 0x1f
        ? mantissa === 0
          ? sign * Infinity
          : Number.NaN
        : sign * (exponent === 0 ? mantissa * 2 ** -24 : (1 + mantissa / 1024) * 2 ** (exponent - 15));
    assert.ok(Object.is(values[h], expected) || (Number.isNaN(expected) && Number.isNaN(values[h])), `0x${h.toString(16)}`);
  }
});

test('f16 encoding (src/tensor/f16, used by convert --fp16) rounds to nearest, ties to even', () => {
  const decode = (bits: number) => toFloat32({ dtype: 'f16', shape: [1], data: Uint16Array.of(bits) })[0];
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  const nextUp = (value: number) => {
    f32[0] = value;
    u32[0]++;
    return f32[0];
  };
  for (let h = 0; h < 0x7bff; h++) {
    const low = decode(h);
    const midpoint = (low + decode(h + 1)) / 2; // exact in float32: one bit more than f16 holds
    assert.equal([...toFloat16Array([low, -low])], [h, h | 0x8000]);
    assert.is(toFloat16Array([midpoint])[0], h % 2 === 0 ? h : h + 1, `tie above 0x${h.toString(16)}`);
    assert.is(toFloat16Array([nextUp(midpoint)])[0], h + 1);
  }
  assert.equal([...toFloat16Array([65519.99, 65520, 1e6, -Infinity, 2 ** -25, nextUp(2 ** -25)])], [0x7bff, 0x7c00, 0x7c00, 0xfc00, 0, 1]);
  assert.is(toFloat16Array([Number.NaN])[0] & 0x7fff, 0x7e00);
});

test('bf16 decoding keeps every bit: it is the top half of a float32', () => {
  const samples = Float32Array.from([1, -2.5, 3.140625, 1e-40, -Infinity, 65504, 3.3895314e38]);
  const words = new Uint32Array(samples.buffer);
  const bits = Uint16Array.from(words, (w) => w >>> 16);
  const decoded = new Uint32Array(toFloat32({ dtype: 'bf16', shape: [bits.length], data: bits }).buffer);
  for (let i = 0; i < bits.length; i++) assert.is(decoded[i], ((words[i] >>> 16) << 16) >>> 0);
});

test('integer, bool and f64 tensors convert to float32; f32 is returned as is', () => {
  const f32 = Float32Array.from([1, 2]);
  assert.is(toFloat32({ dtype: 'f32', shape: [2], data: f32 }), f32);
  assert.equal([...toFloat32({ dtype: 'i64', shape: [2], data: BigInt64Array.from([-3n, 2n ** 40n]) })], [-3, 2 ** 40]);
  assert.equal([...toFloat32({ dtype: 'bool', shape: [2], data: Uint8Array.from([1, 0]) })], [1, 0]);
  assert.equal([...toFloat32({ dtype: 'i8', shape: [1], data: Int8Array.from([-128]) })], [-128]);
  assert.equal([...toFloat32({ dtype: 'f64', shape: [1], data: Float64Array.from([0.1]) })], [Math.fround(0.1)]);
});

test('hostTensorFromBytes shares aligned bytes, copies unaligned ones, checks the length', () => {
  const buffer = new Uint8Array(17);
  new Float32Array(buffer.buffer, 0, 4).set([1, 2, 3, 4]);
  const aligned = hostTensorFromBytes('f32', [2, 2], buffer.subarray(0, 16));
  assert.is(aligned.data.buffer, buffer.buffer);
  const unalignedBytes = buffer.slice(0, 17);
  unalignedBytes.copyWithin(1, 0, 16);
  const unaligned = hostTensorFromBytes('f32', [4], unalignedBytes.subarray(1));
  assert.is.not(unaligned.data.buffer, unalignedBytes.buffer);
  assert.equal([...unaligned.data], [1, 2, 3, 4]);
  assert.equal(hostTensorBytes(unaligned), buffer.subarray(0, 16));
  assert.throws(() => hostTensorFromBytes('f32', [5], buffer.subarray(0, 16)), /needs 20 bytes, got 16/);
  assert.is(elementCount([]), 1);
  assert.is(elementCount([3, 0, 2]), 0);
  assert.is(tensorByteLength('i64', [2, 3]), 48);
});

test('bytesSource and blobSource read exact ranges and refuse others with IoError', async () => {
  const bytes = Uint8Array.from({ length: 100 }, (_, i) => i);
  for (const source of [bytesSource(bytes, 'mem'), blobSource(new Blob([bytes]), 'blob')]) {
    assert.is(source.size, 100);
    assert.equal([...(await source.read(10, 3))], [10, 11, 12]);
    assert.is((await source.read(100, 0)).length, 0);
    for (const [offset, length] of [
      [99, 2],
      [-1, 1],
      [0, 101],
      [0.5, 1],
      [1, Number.NaN],
    ]) {
      const error = await expectError(() => source.read(offset, length), IoError, /outside the 100-byte file/);
      assert.is(error.fileName, source.name);
    }
  }
  const file = new File([bytes], 'named.bin');
  assert.is(blobSource(file).name, 'named.bin');
});

test.run();
