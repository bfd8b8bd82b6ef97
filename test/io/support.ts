// Shared helpers of the io tests: fixtures, error assertions, a seeded PRNG.
import { readFileSync } from 'node:fs';
import * as assert from 'uvu/assert';
import { type ByteSource, bytesSource } from '../../src/io/byte-source.js';
import { type HostTensor, hostTensorBytes } from '../../src/io/host-tensor.js';
import { fixturePath } from '../helpers/paths.js';

export function fixtureBytes(name: string): Uint8Array {
  return readFileSync(fixturePath(name));
}

export function fixtureSource(name: string): ByteSource {
  return bytesSource(fixtureBytes(name), name);
}

/** Runs `action`, asserts it throws (or rejects with) an instance of `type`, returns the error. */
export async function expectError<E extends Error>(
  action: () => unknown,
  type: abstract new (...args: never[]) => E,
  message?: RegExp,
): Promise<E> {
  let thrown: unknown;
  try {
    await action();
  } catch (error) {
    thrown = error;
  }
  if (thrown === undefined) assert.unreachable(`expected ${type.name}, but nothing was thrown`);
  assert.ok(thrown instanceof type, `expected ${type.name}, got ${String(thrown)}`);
  if (message) assert.match(thrown.message, message);
  return thrown;
}

/** Same dtype, shape and bytes. */
export function assertSameTensor(actual: HostTensor, expected: HostTensor, what: string): void {
  assert.is(actual.dtype, expected.dtype, `${what}: dtype`);
  assert.equal(actual.shape, expected.shape, `${what}: shape`);
  assert.ok(Buffer.from(hostTensorBytes(actual)).equals(hostTensorBytes(expected)), `${what}: bytes differ`);
}

/** mulberry32: a small deterministic PRNG, uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
