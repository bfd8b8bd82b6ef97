/**
 * The comparison peer: TensorFlow.js with its WebGPU backend, on the same Dawn instance (and so
 * the same adapter) as our context. Its inputs are NHWC; it runs the same problem sizes with
 * the same bias, and is timed with the same procedure (bench/measure.ts) on its own device.
 */
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { Tensor4D } from '@tensorflow/tfjs-core';
import type { Run, TimedQueue } from './measure.js';

type Tf = typeof import('@tensorflow/tfjs-core');

/** A conv2d problem in the engine's terms (NCHW, OIHW); padding is [top, right, bottom, left]. */
export interface PeerConv2d {
  op: 'conv2d';
  batch: number;
  inChannels: number;
  height: number;
  width: number;
  outChannels: number;
  kernelSize: number;
  stride: number;
  padding: readonly [number, number, number, number];
}

export interface PeerMatmul {
  op: 'matmul';
  m: number;
  k: number;
  n: number;
}

export type PeerProblem = PeerConv2d | PeerMatmul;

export interface PeerCase {
  run: Run;
  dispose(): void;
}

export interface Peer {
  /** e.g. "TF.js 4.22.0 webgpu". */
  name: string;
  adapter: Record<string, unknown>;
  queue: TimedQueue;
  prepare(problem: PeerProblem): PeerCase;
}

/**
 * Loads TF.js on `gpu` (navigator.gpu must be in place before the backend module is imported:
 * it registers itself only when it sees WebGPU). Says why instead when TF.js is not installed
 * or its backend does not start.
 */
export async function loadTfjsWebgpu(gpu: GPU): Promise<{ tf: Tf; backend: WebGPUBackend } | { unavailable: string }> {
  let tf: Tf;
  try {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-webgpu');
    // Small tensors would otherwise be computed on the CPU, which is not what we compare.
    tf.env().set('WEBGPU_CPU_FORWARD', false);
    if (!(await tf.setBackend('webgpu'))) return { unavailable: 'tf.setBackend("webgpu") failed' };
    await tf.ready();
  } catch (e) {
    return { unavailable: `TF.js could not be loaded (${e instanceof Error ? e.message : String(e)})` };
  }
  return { tf, backend: tf.backend() as WebGPUBackend };
}

export async function startTfjsPeer(gpu: GPU): Promise<Peer | { unavailable: string }> {
  const loaded = await loadTfjsWebgpu(gpu);
  if ('unavailable' in loaded) return loaded;
  const { tf, backend } = loaded;
  const device = backend.device;
  const info = backend.adapterInfo as unknown as Record<string, unknown>;
  return {
    name: `TF.js ${tf.version_core} webgpu`,
    adapter: { ...info },
    queue: {
      device,
      timestamps: device.features.has('timestamp-query'),
      flush: () => {
        // TF.js leaves its compute pass open between ops; submitQueue() expects it closed.
        backend.ensureCommandEncoderReady();
        backend.endComputePassEncoder();
        backend.submitQueue();
      },
      drain: () => device.queue.onSubmittedWorkDone(),
    },
    prepare: (problem) => (problem.op === 'conv2d' ? prepareConv2d(tf, problem) : prepareMatmul(tf, problem)),
  };
}

function prepareConv2d(tf: Tf, p: PeerConv2d): PeerCase {
  const fanIn = p.inChannels * p.kernelSize * p.kernelSize;
  const x = tf.randomNormal([p.batch, p.height, p.width, p.inChannels]) as Tensor4D;
  const filter = tf.randomNormal([p.kernelSize, p.kernelSize, p.inChannels, p.outChannels], 0, 1 / Math.sqrt(fanIn)) as Tensor4D;
  const bias = tf.randomNormal([p.outChannels], 0, 0.05);
  const [top, right, bottom, left] = p.padding;
  const pad: [[number, number], [number, number], [number, number], [number, number]] = [
    [0, 0],
    [top, bottom],
    [left, right],
    [0, 0],
  ];
  return {
    run: () => tf.fused.conv2d({ x, filter, bias, strides: p.stride, pad }).dispose(),
    dispose: () => tf.dispose([x, filter, bias]),
  };
}

function prepareMatmul(tf: Tf, p: PeerMatmul): PeerCase {
  const a = tf.randomNormal([p.m, p.k]);
  const b = tf.randomNormal([p.k, p.n], 0, 1 / Math.sqrt(p.k));
  return {
    run: () => tf.matMul(a, b).dispose(),
    dispose: () => tf.dispose([a, b]),
  };
}
