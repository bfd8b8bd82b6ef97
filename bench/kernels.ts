/**
 * Kernel rows: the ops at the shapes where the full-size DeltaDiff ×4 networks spend their time
 * (UNet at a 64² latent, VQ-f4 at a 256² image), and tiny stand-ins of every row for --quick.
 */
import { gaussianNoise } from '../src/diffusion/sampler.js';
import type { GpuContext } from '../src/gpu/context.js';
import { attention } from '../src/ops/attention.js';
import { conv2d } from '../src/ops/conv2d.js';
import { conv2dGeometry } from '../src/ops/conv2d-geometry.js';
import { groupNorm } from '../src/ops/groupnorm.js';
import { matmul } from '../src/ops/matmul.js';
import { windowAttention } from '../src/ops/window-attention.js';
import { shapeSize, Tensor } from '../src/tensor/tensor.js';
import { QUICK_BENCH } from '../test/ops/cases.js';
import type { Run } from './measure.js';
import type { PeerProblem } from './peer-tfjs.js';
import type { RowRole } from './report.js';

export interface PreparedCase {
  run: Run;
  dispose(): void;
}

export interface KernelCase {
  name: string;
  shape: string;
  /** FLOP of one run; null for memory-bound kernels, which report `bytes` instead. */
  flop: number | null;
  /** The least traffic a memory-bound kernel needs: each input read once, the output written once. */
  bytes: number | null;
  role: RowRole | null;
  prepare(ctx: GpuContext): PreparedCase;
  /** The same problem for the peer library, where it has the op. */
  peer?: PeerProblem;
}

const dims = (shape: readonly number[]): string => `[${shape.join(',')}]`;

/** N(0, std²) values on the GPU, the same for every run of the bench. */
export function randomTensor(ctx: GpuContext, shape: readonly number[], std = 1, seed = 1): Tensor {
  const values = gaussianNoise(seed)(shapeSize(shape));
  if (std !== 1) for (let i = 0; i < values.length; i++) values[i] *= std;
  return Tensor.from(ctx, values, shape, 'f32', 'bench input');
}

interface ConvProblem {
  model: string;
  cin: number;
  cout: number;
  size: number;
  k: 1 | 3;
  stride?: 1 | 2;
  /** [top, right, bottom, left]; default (k − 1)/2 on every side. */
  padding?: [number, number, number, number];
}

function convCase({ model, cin, cout, size, k, stride = 1, padding }: ConvProblem): KernelCase {
  const xShape = [1, cin, size, size];
  const wShape = [cout, cin, k, k];
  const g = conv2dGeometry('bench conv2d', xShape, wShape, { stride, padding });
  const channels = cin === cout ? `${cin}ch` : `${cin}→${cout}`;
  const strided = stride === 2 ? `/2 (→${g.outHeight}²${padding ? `, pad ${padding.join(',')}` : ''})` : '';
  return {
    name: `${model} conv2d ${k}×${k}${strided} ${channels}@${size}²`,
    shape: `x${dims(xShape)} w${dims(wShape)}`,
    flop: 2 * cout * cin * k * k * g.outHeight * g.outWidth,
    bytes: null,
    role: model === 'unet' && k === 3 && stride === 1 ? 'unet-conv3x3' : null,
    prepare(ctx) {
      const x = randomTensor(ctx, xShape);
      const w = randomTensor(ctx, wShape, 1 / Math.sqrt(cin * k * k), 2);
      const b = randomTensor(ctx, [cout], 0.05, 3);
      return {
        run: () => conv2d(x, w, b, { stride, padding }).dispose(),
        dispose: () => [x, w, b].forEach((t) => t.dispose()),
      };
    },
    peer: {
      op: 'conv2d',
      batch: 1,
      inChannels: cin,
      height: size,
      width: size,
      outChannels: cout,
      kernelSize: k,
      stride,
      padding: [g.padTop, g.padRight, g.padBottom, g.padLeft],
    },
  };
}

function groupNormCase(model: string, channels: number, size: number): KernelCase {
  const xShape = [1, channels, size, size];
  return {
    name: `${model} groupNorm+SiLU ${channels}ch@${size}²`,
    shape: `x${dims(xShape)} 32 groups`,
    flop: null,
    bytes: 2 * 4 * shapeSize(xShape),
    role: null,
    prepare(ctx) {
      const x = randomTensor(ctx, xShape);
      const gamma = randomTensor(ctx, [channels], 0.1, 2);
      const beta = randomTensor(ctx, [channels], 0.1, 3);
      return {
        run: () => groupNorm(x, gamma, beta, { eps: 1e-5, silu: true }).dispose(),
        dispose: () => [x, gamma, beta].forEach((t) => t.dispose()),
      };
    },
  };
}

/** Shifted (masked) windows: the heavier of the two Swin block kinds. */
function windowAttentionCase(model: string, dim: number, headDim: number, windowSize: number, size: number): KernelCase {
  const heads = dim / headDim;
  const qkvShape = [1, 3 * dim, size, size];
  const shift = size > windowSize ? windowSize / 2 : 0;
  return {
    name: `${model} windowAttention ${heads}h×${headDim} ws${windowSize}${shift ? ` shift ${shift}` : ''} @${size}²`,
    shape: `qkv${dims(qkvShape)}`,
    flop: 4 * windowSize * windowSize * dim * size * size,
    bytes: null,
    role: null,
    prepare(ctx) {
      const qkv = randomTensor(ctx, qkvShape);
      const table = randomTensor(ctx, [(2 * windowSize - 1) ** 2, heads], 0.5, 2);
      return {
        run: () => windowAttention(qkv, table, { windowSize, shift, headDim }).dispose(),
        dispose: () => [qkv, table].forEach((t) => t.dispose()),
      };
    },
  };
}

function attentionCase(model: string, channels: number, tokens: number): KernelCase {
  const shape = [1, channels, tokens];
  return {
    name: `${model} mid attention ${tokens} tokens × ${channels}`,
    shape: `q,k,v${dims(shape)}`,
    flop: 4 * channels * tokens * tokens,
    bytes: null,
    role: null,
    prepare(ctx) {
      const [q, k, v] = [1, 2, 3].map((seed) => randomTensor(ctx, shape, 1, seed));
      return {
        run: () => attention(q, k, v).dispose(),
        dispose: () => [q, k, v].forEach((t) => t.dispose()),
      };
    },
  };
}

function matmulCase(m: number, k: number, n: number): KernelCase {
  return {
    name: `matmul ${m}×${k}×${n}`,
    shape: `a[${m},${k}] b[${k},${n}]`,
    flop: 2 * m * k * n,
    bytes: null,
    role: 'matmul',
    prepare(ctx) {
      const a = randomTensor(ctx, [m, k]);
      const b = randomTensor(ctx, [k, n], 1 / Math.sqrt(k), 2);
      return {
        run: () => matmul(a, b).dispose(),
        dispose: () => [a, b].forEach((t) => t.dispose()),
      };
    },
    peer: { op: 'matmul', m, k, n },
  };
}

/** Rows at the full-size models' real shapes. */
export function fullKernelCases(): KernelCase[] {
  return [
    convCase({ model: 'unet', cin: 160, cout: 160, size: 64, k: 3 }),
    convCase({ model: 'unet', cin: 320, cout: 320, size: 32, k: 3 }),
    convCase({ model: 'unet', cin: 640, cout: 640, size: 16, k: 3 }),
    convCase({ model: 'unet', cin: 640, cout: 640, size: 8, k: 3 }),
    convCase({ model: 'unet', cin: 160, cout: 160, size: 64, k: 3, stride: 2 }),
    convCase({ model: 'unet', cin: 320, cout: 320, size: 32, k: 3, stride: 2 }),
    // Swin qkv and MLP (per-token Linears run as 1×1 convs), and a ResBlock skip.
    convCase({ model: 'unet', cin: 192, cout: 576, size: 64, k: 1 }),
    convCase({ model: 'unet', cin: 192, cout: 768, size: 64, k: 1 }),
    convCase({ model: 'unet', cin: 768, cout: 192, size: 64, k: 1 }),
    convCase({ model: 'unet', cin: 160, cout: 320, size: 32, k: 1 }),
    convCase({ model: 'vq', cin: 128, cout: 128, size: 256, k: 3 }),
    convCase({ model: 'vq', cin: 256, cout: 256, size: 128, k: 3 }),
    convCase({ model: 'vq', cin: 512, cout: 512, size: 64, k: 3 }),
    convCase({ model: 'vq', cin: 128, cout: 128, size: 256, k: 3, stride: 2, padding: [0, 1, 1, 0] }),
    convCase({ model: 'vq', cin: 128, cout: 256, size: 128, k: 1 }),
    convCase({ model: 'vq', cin: 128, cout: 3, size: 256, k: 3 }),
    ...[
      [160, 64],
      [320, 32],
      [640, 16],
      [640, 8],
    ].map(([c, s]) => groupNormCase('unet', c, s)),
    ...[
      [128, 256],
      [256, 128],
      [512, 64],
    ].map(([c, s]) => groupNormCase('vq', c, s)),
    windowAttentionCase('unet', 192, 32, 8, 64),
    windowAttentionCase('unet', 192, 32, 8, 32),
    attentionCase('vq', 512, 64 * 64),
    matmulCase(1024, 1024, 1024),
  ];
}

/** One tiny row of every kind, for the smoke run: the op-test table checks the same problems. */
export function quickKernelCases(): KernelCase[] {
  return [
    ...QUICK_BENCH.conv2d.map((problem) => convCase({ model: 'tiny', ...problem })),
    ...QUICK_BENCH.groupNorm.map(({ channels, size }) => groupNormCase('tiny', channels, size)),
    windowAttentionCase('tiny', 64, 32, 8, 16),
    attentionCase('tiny', 32, 256),
    ...QUICK_BENCH.matmul.map(({ m, k, n }) => matmulCase(m, k, n)),
  ];
}
