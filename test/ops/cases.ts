/**
 * The op-test table: every case of the GPU ops that maps inputs to one output, with its CPU
 * reference and, where the op has a backward, its gradient. test/ops/table.test.ts runs each case
 * forward, backward and under a lowered binding limit; bench/kernels.ts times the problems of
 * QUICK_BENCH, which the table also checks. Modelled on ggml's test-backend-ops and tinygrad's
 * helper_test_op. This module imports only src/, so the bench can use it.
 */
import { conv2dGeometry, type Conv2dPadding } from '../../src/ops/conv2d-geometry.js';
import { conv2d, conv2dDirect, conv2dTiled, defaultConv2dTiling, type Conv2dOptions, type Conv2dTiling } from '../../src/ops/conv2d.js';
import { type AttentionKernel, attention } from '../../src/ops/attention.js';
import { attentionRef } from '../../src/ops/cpu/attention.js';
import { conv2dRef } from '../../src/ops/cpu/conv2d.js';
import { addRef, geluRef, mulRef, siluRef } from '../../src/ops/cpu/elementwise.js';
import { conv2dBackwardRef } from '../../src/ops/cpu/grad-conv2d.js';
import { geluBackwardRef, siluBackwardRef } from '../../src/ops/cpu/grad-elementwise.js';
import { groupNormBackwardRef } from '../../src/ops/cpu/grad-groupnorm.js';
import { linearBackwardRef } from '../../src/ops/cpu/grad-matmul.js';
import { concatChannelsBackwardRef, upsampleNearest2xBackwardRef } from '../../src/ops/cpu/grad-layout.js';
import { windowAttentionBackwardRef } from '../../src/ops/cpu/grad-window-attention.js';
import { concatChannelsRef, crop2dRef, pad2dRef, pixelShuffleRef, pixelUnshuffleRef } from '../../src/ops/cpu/layout.js';
import { groupNormRef } from '../../src/ops/cpu/groupnorm.js';
import { linearRef, matmulRef, type MatmulRefOptions } from '../../src/ops/cpu/matmul.js';
import { bicubicUpsampleRef, upsampleNearestRef } from '../../src/ops/cpu/resample.js';
import { residualStepRef } from '../../src/ops/cpu/residual-step.js';
import { quantizeRef } from '../../src/ops/cpu/quantize.js';
import { softmaxRef } from '../../src/ops/cpu/softmax.js';
import { windowAttentionRef } from '../../src/ops/cpu/window-attention.js';
import { add, gelu, mul, scale, silu } from '../../src/ops/elementwise.js';
import { conv2dBackward } from '../../src/ops/grad/conv2d.js';
import { GRADIENT_RULES } from '../../src/ops/grad/rules.js';
import { geluBackward, siluBackward } from '../../src/ops/grad/elementwise.js';
import { groupNormBackward } from '../../src/ops/grad/groupnorm.js';
import { concatChannelsBackward, upsampleNearest2xBackward } from '../../src/ops/grad/layout.js';
import { windowAttentionBackward } from '../../src/ops/grad/window-attention.js';
import { concatChannels, crop2d, pad2d, pixelShuffle, pixelUnshuffle } from '../../src/ops/layout.js';
import { linearBackward } from '../../src/ops/grad/matmul.js';
import { groupNorm } from '../../src/ops/groupnorm.js';
import { linear, matmul, type LinearOptions } from '../../src/ops/matmul.js';
import { bicubicUpsample, upsampleNearest2x } from '../../src/ops/resample.js';
import { residualStep } from '../../src/ops/residual-step.js';
import { quantize } from '../../src/ops/quantize.js';
import { softmax } from '../../src/ops/softmax.js';
import { type WindowAttentionKeys, windowAttention } from '../../src/ops/window-attention.js';
import type { GpuContext } from '../../src/gpu/context.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { uniform } from '../../src/train/init.js';

/** One input: its shape and the range its uniform random values come from (default [−1, 1)). */
export interface OpInput {
  shape: number[];
  lo?: number;
  hi?: number;
  /** Draws the values instead, for inputs that must not be uniform. */
  values?: (count: number, seed: number) => Float32Array;
}

/** Central differences of Σ dy·f(θ) over the inputs, against an analytic gradient. */
export interface FiniteDifferenceCheck {
  step: number;
  tolerance: number;
  /** Probed coordinates per input; every coordinate when absent. */
  count?: number;
  /** Input indices to probe; every input when absent. */
  inputs?: number[];
}

/** The backward of a case: one gradient per input, in input order, for the output gradient dy. */
export interface OpGradient {
  run(inputs: Tensor[], dy: Tensor): Tensor[];
  reference(inputs: Float32Array[], dy: Float32Array): Float32Array[];
  /** Largest relative error of each GPU gradient against the reference. */
  tolerance: number;
  /** The reference against central differences of the reference forward. */
  referenceFd?: FiniteDifferenceCheck;
  /** The GPU gradient against central differences of the GPU forward. */
  gpuFd?: FiniteDifferenceCheck;
}

export interface OpCase {
  name: string;
  inputs: OpInput[];
  /** Input i is drawn with seed + i, the output gradient with seed + inputs.length. */
  seed: number;
  outputShape: number[];
  /** The GPU op; it finds its context on the input tensors. An i32 output is compared as numbers. */
  run(inputs: Tensor[]): Tensor;
  reference(inputs: Float32Array[]): Float32Array;
  /** Largest |gpu − reference| relative to the largest |reference|. */
  tolerance: number;
  gradient?: OpGradient;
  /** The lowered maxStorageBufferBindingSize the case re-runs under (default SPLIT_LIMIT). */
  splitLimit?: number;
}

/** Small enough that most cases split; cases whose smallest unit is larger name their own. */
export const SPLIT_LIMIT = 4096;

/**
 * The lowest limit for an op whose smallest unit of work (a row, a group, a whole operand) takes
 * `unitBytes`: a power of two with room for the unit at an unaligned start.
 */
const limitFor = (unitBytes: number): number => Math.max(SPLIT_LIMIT, 2 ** Math.ceil(Math.log2(unitBytes + 256)));

const dims = (shape: readonly number[]): string => `[${shape.join(',')}]`;

// ---------------------------------------------------------------------------------------------
// Elementwise

const ELEMENTWISE_SIZES = [1, 3, 255, 257, 4099];
const ACTIVATION_GRAD_SIZES = [1, 3, 257, 1031];

function elementwiseCases(): OpCase[] {
  const cases: OpCase[] = [];
  for (const n of ELEMENTWISE_SIZES) {
    const x: OpInput = { shape: [n], lo: -6, hi: 6 };
    cases.push(
      {
        name: `silu n=${n}`,
        inputs: [x],
        seed: n,
        outputShape: [n],
        run: ([t]) => silu(t),
        reference: ([d]) => siluRef(d),
        tolerance: 1e-5,
      },
      {
        name: `gelu n=${n}`,
        inputs: [x],
        seed: n,
        outputShape: [n],
        run: ([t]) => gelu(t),
        reference: ([d]) => geluRef(d),
        tolerance: 1e-5,
      },
      {
        name: `scale n=${n}`,
        inputs: [x],
        seed: n,
        outputShape: [n],
        run: ([t]) => scale(t, -2.5),
        reference: ([d]) => d.map((v) => v * -2.5),
        tolerance: 1e-6,
      },
      {
        name: `add n=${n}`,
        inputs: [{ shape: [n] }, { shape: [n] }],
        seed: 1 + n,
        outputShape: [n],
        run: ([a, b]) => add(a, b),
        reference: ([a, b]) => addRef(a, b),
        tolerance: 1e-6,
      },
      {
        name: `mul n=${n}`,
        inputs: [{ shape: [n] }, { shape: [n] }],
        seed: 1 + n,
        outputShape: [n],
        run: ([a, b]) => mul(a, b),
        reference: ([a, b]) => mulRef(a, b),
        tolerance: 1e-6,
      },
    );
  }
  for (const n of ACTIVATION_GRAD_SIZES) {
    // Central differences on the small sizes; the large ones exercise the kernels' tails.
    const referenceFd = n < 300 ? { step: 1e-2, tolerance: 1e-3 } : undefined;
    for (const [name, op, ref, backward, backwardRef] of [
      ['silu', silu, siluRef, siluBackward, siluBackwardRef],
      ['gelu', gelu, geluRef, geluBackward, geluBackwardRef],
    ] as const) {
      cases.push({
        name: `${name} backward n=${n}`,
        inputs: [{ shape: [n], lo: -6, hi: 6 }],
        seed: n,
        outputShape: [n],
        run: ([x]) => op(x),
        reference: ([x]) => ref(x),
        tolerance: 1e-5,
        gradient: { run: ([x], dy) => [backward(x, dy)], reference: ([x], dy) => [backwardRef(x, dy)], tolerance: 1e-5, referenceFd },
      });
    }
  }
  return cases;
}

// ---------------------------------------------------------------------------------------------
// Matmul and linear

function matmulCase(aShape: number[], bShape: number[], options: MatmulRefOptions, seed: number): OpCase {
  const batch = aShape.length === 3 ? aShape[0] : bShape.length === 3 ? bShape[0] : null;
  const m = aShape[aShape.length - 2];
  const n = options.transposeB ? bShape[bShape.length - 2] : bShape[bShape.length - 1];
  return {
    name: `matmul ${dims(aShape)}·${dims(bShape)}${options.transposeB ? 'ᵀ' : ''}${options.alpha === undefined ? '' : ` α=${options.alpha.toPrecision(3)}`}`,
    inputs: [{ shape: aShape }, { shape: bShape }],
    seed,
    outputShape: batch === null ? [m, n] : [batch, m, n],
    run: ([a, b]) => matmul(a, b, options),
    reference: ([a, b]) => matmulRef(a, aShape, b, bShape, options),
    tolerance: 1e-5,
    // The kernel binds one batch of B whole and splits A's rows.
    splitLimit: limitFor(4 * bShape[bShape.length - 1] * bShape[bShape.length - 2]),
  };
}

interface LinearProblem {
  lead: number[];
  k: number;
  n: number;
  bias: boolean;
  options: LinearOptions;
}

function linearCase({ lead, k, n, bias, options }: LinearProblem, seed: number): OpCase {
  const inputs: OpInput[] = [
    { shape: [...lead, k], lo: -3, hi: 3 },
    { shape: [n, k], lo: -0.5, hi: 0.5 },
  ];
  if (bias) inputs.push({ shape: [n], lo: -0.2, hi: 0.2 });
  return {
    name: `linear ${dims([...lead, k])}→${n}${bias ? ' bias' : ''} ${JSON.stringify(options)}`,
    inputs,
    seed,
    outputShape: [...lead, n],
    run: ([x, w, b]) => linear(x, w, b ?? null, options),
    reference: ([x, w, b]) => linearRef(x, k, w, n, b ?? null, options),
    tolerance: 1e-5,
    // The kernel binds the weight whole and splits the rows.
    splitLimit: limitFor(4 * n * k),
  };
}

/** Linear with a gradient: x [rows, k] in [−2, 2), w and b in [−1, 1). */
function linearGradCase(rows: number, k: number, n: number, options: LinearOptions, seed: number): OpCase {
  return {
    name: `linear backward [${rows},${k}]→${n} ${JSON.stringify(options)}`,
    inputs: [{ shape: [rows, k], lo: -2, hi: 2 }, { shape: [n, k] }, { shape: [n] }],
    seed,
    outputShape: [rows, n],
    run: ([x, w, b]) => linear(x, w, b, options),
    reference: ([x, w, b]) => linearRef(x, k, w, n, b, options),
    tolerance: 1e-5,
    // The backward kernels bind whole tensors.
    splitLimit: limitFor(4 * Math.max(rows * k, n * k, rows * n)),
    gradient: {
      run: ([x, w, b], dy) => {
        const g = linearBackward(x, w, b, dy, options);
        return [g.dx!, g.dw, g.db!];
      },
      reference: ([x, w, b], dy) => {
        const g = linearBackwardRef(x, k, w, n, b, dy, options);
        return [g.dx, g.dw, g.db];
      },
      tolerance: 1e-5,
      referenceFd: { step: 1e-2, tolerance: 1e-3 },
      gpuFd: { step: 1e-2, tolerance: 1e-2, count: 4, inputs: [0] },
    },
  };
}

function matmulCases(): OpCase[] {
  const cases: OpCase[] = [];
  for (const [m, k, n] of [
    [1, 1, 1],
    [3, 5, 1],
    [5, 3, 33],
    [33, 100, 5],
    ...QUICK_BENCH.matmul.map(({ m, k, n }) => [m, k, n]),
    [100, 33, 65],
    [67, 129, 31],
  ]) {
    cases.push(matmulCase([m, k], [k, n], {}, m * 7 + n), matmulCase([m, k], [n, k], { transposeB: true }, m + k));
  }
  cases.push(
    matmulCase([3, 17, 9], [3, 9, 21], {}, 1),
    matmulCase([2, 64, 32], [2, 64, 32], { transposeB: true, alpha: 32 ** -0.5 }, 2),
    matmulCase([4, 5, 7], [7, 3], {}, 3),
    matmulCase([5, 7], [4, 7, 3], { alpha: -2 }, 4),
    matmulCase([2, 70, 70], [2, 70, 70], { transposeB: true }, 5),
    // Several batches per run; runs of rows with unaligned starts; a shared B.
    matmulCase([12, 8, 12], [12, 12, 8], {}, 40),
    matmulCase([3, 40, 33], [3, 33, 20], {}, 41),
    matmulCase([3, 40, 33], [3, 20, 33], { transposeB: true }, 42),
    matmulCase([300, 17], [17, 9], { alpha: 0.5 }, 43),
  );
  const linears: LinearProblem[] = [
    { lead: [2, 3], k: 37, n: 19, bias: true, options: {} },
    { lead: [2, 3], k: 37, n: 19, bias: true, options: { activation: 'gelu' } },
    { lead: [1], k: 64, n: 130, bias: true, options: { inputActivation: 'silu' } },
    { lead: [5], k: 8, n: 12, bias: true, options: { inputActivation: 'silu', activation: 'silu' } },
    { lead: [70], k: 96, n: 40, bias: false, options: { activation: 'gelu' } },
    { lead: [], k: 3, n: 2, bias: true, options: { activation: 'silu' } },
    // The most rows the few-rows kernel takes, and one more (the tiled kernel), fully fused.
    { lead: [2, 4], k: 70, n: 66, bias: true, options: { inputActivation: 'silu', activation: 'gelu' } },
    { lead: [9], k: 70, n: 66, bias: true, options: { inputActivation: 'silu', activation: 'gelu' } },
  ];
  cases.push(...linears.map((p, i) => linearCase(p, 10 + i)));
  cases.push(
    linearGradCase(1, 1, 1, {}, 0),
    linearGradCase(2, 13, 7, { inputActivation: 'silu' }, 1),
    linearGradCase(3, 9, 70, { activation: 'silu' }, 2),
    linearGradCase(5, 33, 6, { activation: 'gelu', inputActivation: 'silu' }, 3),
  );
  return cases;
}

// ---------------------------------------------------------------------------------------------
// Softmax

function softmaxCase(shape: number[], lo: number, hi: number, seed: number): OpCase {
  return {
    name: `softmax ${dims(shape)} in [${lo}, ${hi})`,
    inputs: [{ shape, lo, hi }],
    seed,
    outputShape: shape,
    run: ([x]) => softmax(x),
    reference: ([x]) => softmaxRef(x, shape[shape.length - 1]),
    tolerance: 1e-5,
    // A row must fit one binding: re-run under a limit of a few rows.
    splitLimit: limitFor(4 * 4 * shape[shape.length - 1]),
  };
}

function softmaxCases(): OpCase[] {
  const shapes = [[1], [5], [3, 7], [2, 4, 64], [6, 63], [2, 1000], [3, 4096], [2, 16384], [1, 16385]];
  return [
    ...shapes.map((shape, i) => softmaxCase(shape, -4, 4, i)),
    // Stable for large-magnitude inputs.
    softmaxCase([4, 64], -80, 80, 50),
    softmaxCase([2, 4097], -80, 80, 51),
    softmaxCase([3, 256], 70, 80, 52),
    softmaxCase([3, 33], -80, -70, 53),
    // Runs of rows, aligned and not.
    softmaxCase([100, 64], -10, 10, 60),
    softmaxCase([2, 100, 33], -10, 10, 61),
  ];
}

// ---------------------------------------------------------------------------------------------
// GroupNorm

interface GroupNormProblem {
  shape: number[];
  groups?: number;
  eps: number;
  silu?: boolean;
  film?: boolean;
  /** false: the normalization-free variant (affine, FiLM, SiLU). */
  normalize?: boolean;
  /** Input range: an offset far from zero stresses the variance computation. */
  lo?: number;
  hi?: number;
  /** Forces the statistics workgroup size (GPU 256, CPU adapters 64). */
  statsWorkgroup?: number;
}

type Range = [lo: number, hi: number];

/** Inputs x, γ, β and, with FiLM, scale and shift. */
function groupNormInputs(p: GroupNormProblem, ranges: { gamma: Range; beta: Range; shift: Range }): OpInput[] {
  const [n, channels] = p.shape;
  const inputs: OpInput[] = [
    { shape: p.shape, lo: p.lo ?? -2, hi: p.hi ?? 2 },
    { shape: [channels], lo: ranges.gamma[0], hi: ranges.gamma[1] },
    { shape: [channels], lo: ranges.beta[0], hi: ranges.beta[1] },
  ];
  if (p.film) inputs.push({ shape: [n, channels], lo: -0.5, hi: 0.5 }, { shape: [n, channels], lo: ranges.shift[0], hi: ranges.shift[1] });
  return inputs;
}

function groupNormCase(p: GroupNormProblem, seed: number, gradient = false): OpCase {
  const n = p.shape[0];
  const values = p.shape.reduce((a, b) => a * b, 1);
  // The forward binds whole groups, the backward whole batch items.
  const splitLimit = limitFor((4 * values) / (gradient ? n : n * (p.groups ?? 32)));
  const options = { groups: p.groups, eps: p.eps, silu: p.silu, normalize: p.normalize, statsWorkgroup: p.statsWorkgroup };
  const ranges: { gamma: Range; beta: Range; shift: Range } = gradient
    ? { gamma: [0.5, 1.5], beta: [-1, 1], shift: [-1, 1] }
    : { gamma: [0.5, 1.5], beta: [-0.5, 0.5], shift: [-0.5, 0.5] };
  const withFilm = <T>(scaleValue: T | undefined, shiftValue: T | undefined) => (p.film ? { scale: scaleValue, shift: shiftValue } : {});
  return {
    name: `groupNorm${gradient ? ' backward' : ''} ${dims(p.shape)} groups ${p.groups ?? 32} eps ${p.eps}${p.silu ? ' silu' : ''}${p.film ? ' film' : ''}${p.normalize === false ? ' unnormalized' : ''}${p.lo === undefined ? '' : ` in [${p.lo}, ${p.hi})`}${p.statsWorkgroup ? ` stats workgroup ${p.statsWorkgroup}` : ''}`,
    inputs: groupNormInputs(p, ranges),
    seed,
    outputShape: p.shape,
    run: ([x, gamma, beta, s, t]) => groupNorm(x, gamma, beta, { ...options, ...withFilm(s, t) }),
    reference: ([x, gamma, beta, s, t]) => groupNormRef(x, p.shape, gamma, beta, { ...options, ...withFilm(s, t) }),
    tolerance: 1e-5,
    splitLimit,
    gradient: gradient
      ? {
          run: ([x, gamma, beta, s, t], dy) => {
            const g = groupNormBackward(x, gamma, beta, dy, { ...options, ...withFilm(s, t) });
            return [g.dx, g.dgamma, g.dbeta, ...(p.film ? [g.dscale!, g.dshift!] : [])];
          },
          reference: ([x, gamma, beta, s, t], dy) => {
            const g = groupNormBackwardRef(x, p.shape, gamma, beta, dy, { ...options, ...withFilm(s, t) });
            return [g.dx, g.dgamma, g.dbeta, ...(p.film ? [g.dscale, g.dshift] : [])];
          },
          tolerance: 1e-5,
        }
      : undefined,
  };
}

function groupNormCases(): OpCase[] {
  const forward: GroupNormProblem[] = [
    { shape: [1, 32, 1, 1], eps: 1e-5 },
    { shape: [2, 32, 3, 5], eps: 1e-6 },
    { shape: [2, 64, 17, 13], eps: 1e-5, silu: true },
    { shape: [1, 96, 8, 8], eps: 1e-6, film: true },
    { shape: [2, 320, 4, 4], eps: 1e-5, film: true, silu: true },
    { shape: [2, 64, 1, 1], eps: 1e-5, film: true, silu: true },
    { shape: [2, 96, 37], eps: 1e-6 },
    { shape: [1, 12, 6, 5], groups: 4, eps: 1e-5, silu: true },
    { shape: [1, 64, 9, 9], eps: 1e-5, lo: 10, hi: 11 },
  ];
  // Every forward case with both statistics workgroup sizes (GPU, CPU adapter).
  const cases = [256, 64].flatMap((statsWorkgroup) => forward.map((p, i) => groupNormCase({ ...p, statsWorkgroup }, 100 + i)));
  // Statistics over long groups: 20·64·64 = 81,920 values per group (UNet) and 4·512·512 =
  // 1,048,576 (autoencoder), offset from zero.
  cases.push(
    groupNormCase({ shape: [1, 40, 64, 64], groups: 2, eps: 1e-5, lo: 3, hi: 5 }, 7),
    groupNormCase({ shape: [1, 40, 64, 64], groups: 2, eps: 1e-5, lo: 3, hi: 5, statsWorkgroup: 256 }, 7),
    groupNormCase({ shape: [1, 8, 512, 512], groups: 2, eps: 1e-6, lo: -1, hi: 3, silu: true }, 8),
    groupNormCase({ shape: [1, 4, 127, 129], groups: 1, eps: 1e-6, lo: 10, hi: 11 }, 9),
    // Runs of groups; groups reduced in slices.
    groupNormCase({ shape: [4, 64, 17, 13], eps: 1e-5, film: true, silu: true }, 20),
    groupNormCase({ shape: [2, 32, 32, 32], eps: 1e-6 }, 21),
    groupNormCase({ shape: [3, 8, 128, 96], groups: 4, eps: 1e-6, lo: 2, hi: 3 }, 22),
    // Normalization-free (tile-independent models): vec4 and scalar rows, runs of groups.
    groupNormCase({ shape: [2, 32, 8, 8], eps: 1e-5, film: true, silu: true, normalize: false, lo: 3, hi: 5 }, 23),
    groupNormCase({ shape: [1, 12, 5, 7], groups: 4, eps: 1e-5, normalize: false }, 24),
    groupNormCase({ shape: [4, 64, 17, 13], eps: 1e-5, film: true, silu: true, normalize: false }, 25),
    // 67,200 (sample, channel) planes, more than one grid dimension holds: they fold into z.
    groupNormCase({ shape: [2100, 32, 4], eps: 1e-5, film: true }, 26),
  );
  const backward: GroupNormProblem[] = [
    { shape: [1, 4, 1, 1], groups: 1, eps: 1e-5, lo: -2, hi: 3 },
    { shape: [2, 6, 3, 5], groups: 3, eps: 1e-5, film: true, silu: true, lo: -2, hi: 3 },
    { shape: [3, 4, 7], groups: 2, eps: 1e-5, silu: true, lo: -2, hi: 3 },
    { shape: [2, 8, 4, 4], groups: 4, eps: 1e-5, film: true, lo: -2, hi: 3 },
    { shape: [2, 64, 9, 9], groups: 32, eps: 1e-5, film: true, silu: true, lo: -2, hi: 3 },
    // Batches larger than the binding limit run sample by sample.
    { shape: [5, 8, 9, 10], groups: 4, eps: 1e-5, film: true, silu: true, lo: -2, hi: 3 },
    { shape: [2, 8, 4, 4], groups: 4, eps: 1e-5, film: true, silu: true, normalize: false, lo: -2, hi: 3 },
    { shape: [3, 4, 7], groups: 2, eps: 1e-5, normalize: false, lo: -2, hi: 3 },
    { shape: [5, 8, 9, 10], groups: 4, eps: 1e-5, film: true, silu: true, normalize: false, lo: -2, hi: 3 },
  ];
  for (const [i, p] of backward.entries()) {
    const c = groupNormCase(p, 10 * i, true);
    // Central differences of the reference on the small cases, of the GPU forward on the FiLM+SiLU one.
    if (i < 4 || i === 6 || i === 7) c.gradient!.referenceFd = { step: 1e-3, tolerance: 2e-3 };
    if (i === 1) c.gradient!.gpuFd = { step: 1e-2, tolerance: 1e-2, count: 4 };
    cases.push(c);
  }
  return cases;
}

// ---------------------------------------------------------------------------------------------
// Conv2d

type ConvFn = (x: Tensor, weight: Tensor, bias: Tensor | null, options?: Conv2dOptions) => Tensor;

/**
 * Every GPU implementation: the reference kernel, the default, two other tilings of the direct
 * kernel, the default tiling without Winograd, and Winograd F(2×2) and F(4×4) forced (the
 * default chooses per problem; both fall back to the tiled kernel where Winograd does not
 * apply), F(4×4) with a GEMM block that leaves partial channel and tile blocks.
 */
export function convImplementations(ctx: GpuContext): [string, ConvFn][] {
  const tiling = defaultConv2dTiling(ctx);
  const withTiling =
    (t: Conv2dTiling): ConvFn =>
    (x, w, b, o = {}) =>
      conv2dTiled(x, w, b, o, t);
  return [
    ['conv2dDirect', conv2dDirect],
    ['conv2d', conv2d],
    // The GPU-sized tile, and weights staged in workgroup memory with a tile that divides nothing.
    ['conv2d 16×2 tile', withTiling({ outChannels: 16, pixelsPerInvocation: 2, workgroupSize: 64, weightSharing: tiling.weightSharing })],
    ['conv2d workgroup sharing', withTiling({ outChannels: 8, pixelsPerInvocation: 3, workgroupSize: 16, weightSharing: 'workgroup' })],
    ['conv2d tiled', withTiling({ ...tiling, winograd: null })],
    ['conv2d winograd F2', withTiling({ ...tiling, winograd: { tileSize: 2 } })],
    ['conv2d winograd F4', withTiling({ ...tiling, winograd: { tileSize: 4, outChannels: 16, tilesPerLane: 3 } })],
  ];
}
const CONV_IMPLEMENTATIONS = [
  'conv2dDirect',
  'conv2d',
  'conv2d 16×2 tile',
  'conv2d workgroup sharing',
  'conv2d tiled',
  'conv2d winograd F2',
  'conv2d winograd F4',
] as const;

export interface ConvProblem {
  n: number;
  cin: number;
  h: number;
  w: number;
  cout: number;
  k: 1 | 3;
  stride?: 1 | 2;
  padding?: Conv2dPadding;
  bias?: boolean;
  silu?: boolean;
  gelu?: boolean;
  residual?: boolean;
}

/** Bytes of the largest of input, weight and output. */
function convLargestBinding(c: ConvProblem): number {
  const g = conv2dGeometry('test', [c.n, c.cin, c.h, c.w], [c.cout, c.cin, c.k, c.k], c);
  return 4 * Math.max(c.n * c.cin * c.h * c.w, c.cout * c.cin * c.k * c.k, c.n * c.cout * g.outHeight * g.outWidth);
}

function describeConv(c: ConvProblem): string {
  const pad = c.padding === undefined ? '' : ` pad ${String(c.padding)}`;
  const extras = [c.bias && 'bias', c.silu && 'silu', c.gelu && 'gelu', c.residual && 'residual'].filter(Boolean).join('+');
  return `[${c.n},${c.cin},${c.h},${c.w}]→${c.cout} k${c.k} s${c.stride ?? 1}${pad} ${extras}`;
}

/**
 * The CPU reference of a conv problem, computed once for all the implementations that check it
 * (the realistic layers take a good part of a second in f64).
 */
const convReferences = new WeakMap<ConvProblem, { inputs: Float32Array[]; output: Float32Array }>();
const sameInputs = (a: Float32Array[], b: Float32Array[]): boolean =>
  a.length === b.length && a.every((x, i) => x.length === b[i].length && x.every((v, j) => Object.is(v, b[i][j])));

/** Inputs x in [−2, 2), weight, then bias and residual when the problem has them. */
function convCase(c: ConvProblem, implementation: (typeof CONV_IMPLEMENTATIONS)[number], seed: number, splitLimit?: number): OpCase {
  const xShape = [c.n, c.cin, c.h, c.w];
  const wShape = [c.cout, c.cin, c.k, c.k];
  const g = conv2dGeometry('test', xShape, wShape, c);
  const outputShape = [c.n, c.cout, g.outHeight, g.outWidth];
  const inputs: OpInput[] = [{ shape: xShape, lo: -2, hi: 2 }, { shape: wShape }];
  if (c.bias) inputs.push({ shape: [c.cout] });
  if (c.residual) inputs.push({ shape: outputShape });
  const activation = c.silu ? 'silu' : c.gelu ? 'gelu' : null;
  const split = (rest: Tensor[] | Float32Array[]) => ({
    bias: c.bias ? rest[0] : null,
    residual: c.residual ? rest[c.bias ? 1 : 0] : undefined,
  });
  return {
    name: `${implementation} ${describeConv(c)}`,
    inputs,
    seed,
    outputShape,
    run: ([x, w, ...rest]) => {
      const fn = convImplementations(x.ctx).find(([name]) => name === implementation)![1];
      const { bias, residual } = split(rest) as { bias: Tensor | null; residual?: Tensor };
      return fn(x, w, bias, { stride: c.stride, padding: c.padding, activation, residual });
    },
    reference: (data) => {
      const known = convReferences.get(c);
      if (known && sameInputs(known.inputs, data)) return known.output;
      const [x, w, ...rest] = data;
      const { bias, residual } = split(rest) as { bias: Float32Array | null; residual?: Float32Array };
      const output = conv2dRef(x, xShape, w, wShape, bias, { stride: c.stride, padding: c.padding, activation, residual }).data;
      convReferences.set(c, { inputs: data, output });
      return output;
    },
    tolerance: 1e-5,
    splitLimit,
  };
}

interface ConvGradProblem {
  x: number[];
  cout: number;
  k: 1 | 3;
  stride?: 1 | 2;
  padding?: Conv2dPadding;
  /** A fused activation: its gradient is the autograd rule's (conv2dBackward takes the pre-activation's). */
  activation?: 'silu' | 'gelu';
}

/** Central differences: of the reference on small problems, of the GPU forward on one. */
const FD_REFERENCE = { step: 1e-2, tolerance: 1e-3 };
const FD_GPU = { step: 1e-2, tolerance: 1e-2, count: 6 };

/** conv2d + bias (and activation) with its backward: x in [−1, 1), w in [−0.5, 0.5), b in [−1, 1). */
function convGradCase(
  { x: xShape, cout, k, stride, padding, activation }: ConvGradProblem,
  seed: number,
  fd: Pick<OpGradient, 'referenceFd' | 'gpuFd'>,
): OpCase {
  const wShape = [cout, xShape[1], k, k];
  const options = { stride, padding };
  const g = conv2dGeometry('test', xShape, wShape, options);
  // The fused activation's backward lives in the autograd rule, which returns [input, gradient] pairs.
  const ruleGrads = (x: Tensor, w: Tensor, b: Tensor, dy: Tensor): Tensor[] => {
    const pairs = new Map(GRADIENT_RULES.conv2d.backward(dy, [x], () => true, x, w, b, { ...options, activation }));
    return [x, w, b].map((t) => pairs.get(t)!);
  };
  const activationBackwardRef = activation === 'silu' ? siluBackwardRef : geluBackwardRef;
  return {
    name: `conv2d backward ${dims(xShape)}→${cout} k${k} s${stride ?? 1}${padding === undefined ? '' : ` pad ${String(padding)}`}${activation ? ` ${activation}` : ''}`,
    inputs: [{ shape: xShape }, { shape: wShape, lo: -0.5, hi: 0.5 }, { shape: [cout] }],
    seed,
    outputShape: [xShape[0], cout, g.outHeight, g.outWidth],
    run: ([x, w, b]) => conv2d(x, w, b, { ...options, activation }),
    reference: ([x, w, b]) => conv2dRef(x, xShape, w, wShape, b, { ...options, activation }).data,
    tolerance: 1e-5,
    // The direct backward kernels bind the whole weight.
    splitLimit: limitFor(4 * wShape.reduce((a, b) => a * b, 1)),
    gradient: {
      run: ([x, w, b], dy) => {
        if (activation) return ruleGrads(x, w, b, dy);
        const grads = conv2dBackward(x, w, dy, options);
        return [grads.dx!, grads.dw, grads.db!];
      },
      reference: ([x, w, b], dy) => {
        const dz = activation ? activationBackwardRef(conv2dRef(x, xShape, w, wShape, b, options).data, dy) : dy;
        const grads = conv2dBackwardRef(x, xShape, w, wShape, dz, options);
        return [grads.dx, grads.dw, grads.db];
      },
      tolerance: 1e-5,
      ...fd,
    },
  };
}

function convCases(): OpCase[] {
  const awkward: ConvProblem[] = [
    { n: 1, cin: 3, h: 1, w: 1, cout: 1, k: 3 },
    { n: 2, cin: 5, h: 3, w: 5, cout: 6, k: 3, bias: true, silu: true },
    { n: 1, cin: 7, h: 5, w: 3, cout: 33, k: 1, bias: true, residual: true },
    { n: 2, cin: 3, h: 7, w: 9, cout: 6, k: 3, stride: 2 },
    { n: 1, cin: 5, h: 8, w: 6, cout: 33, k: 3, stride: 2, padding: [0, 1, 1, 0], bias: true },
    { n: 2, cin: 7, h: 1, w: 1, cout: 33, k: 1, bias: true, silu: true, residual: true },
    { n: 1, cin: 6, h: 10, w: 11, cout: 17, k: 3, padding: 0, residual: true },
    { n: 2, cin: 5, h: 9, w: 7, cout: 6, k: 3, padding: [2, 0, 1, 1], bias: true, silu: true },
    { n: 1, cin: 3, h: 6, w: 7, cout: 1, k: 1, stride: 2, padding: 0 },
    { n: 2, cin: 6, h: 4, w: 4, cout: 6, k: 1, padding: 1, bias: true, silu: true },
    // Output widths that are multiples of 8 take the shared-rows path of the default tiling on
    // CPU adapters: a partial last tile, a first column inside the image, two columns of padding.
    { n: 2, cin: 5, h: 9, w: 8, cout: 40, k: 3, bias: true, silu: true },
    { n: 1, cin: 3, h: 5, w: 10, cout: 9, k: 3, padding: [1, 0, 2, 0], residual: true },
    { n: 1, cin: 4, h: 3, w: 16, cout: 8, k: 3, padding: [0, 0, 0, 2], bias: true },
    // Input, output and weight items larger than the limit (formerly the 2048-byte split test).
    { n: 2, cin: 12, h: 9, w: 10, cout: 20, k: 3, bias: true, silu: true, residual: true },
    { n: 1, cin: 10, h: 12, w: 12, cout: 12, k: 3, stride: 2, padding: [0, 1, 1, 0], bias: true },
    { n: 5, cin: 3, h: 6, w: 6, cout: 4, k: 1, bias: true, residual: true },
    // GELU fused into the store: 3×3 (Winograd's output transform where it runs), shared rows,
    // 1×1 with a residual, and input channels split over dispatches (GELU in the last only).
    { n: 2, cin: 5, h: 3, w: 5, cout: 6, k: 3, bias: true, gelu: true },
    { n: 2, cin: 5, h: 9, w: 8, cout: 40, k: 3, bias: true, gelu: true },
    { n: 2, cin: 7, h: 1, w: 1, cout: 33, k: 1, bias: true, gelu: true, residual: true },
    { n: 2, cin: 12, h: 9, w: 10, cout: 20, k: 3, bias: true, gelu: true, residual: true },
    { n: 1, cin: 40, h: 5, w: 7, cout: 9, k: 1, gelu: true },
  ];
  const realistic: ConvProblem[] = [
    { n: 1, cin: 64, h: 32, w: 32, cout: 64, k: 3, bias: true, silu: true, residual: true },
    { n: 1, cin: 160, h: 16, w: 16, cout: 320, k: 1, bias: true },
    { n: 2, cin: 32, h: 16, w: 16, cout: 32, k: 3, stride: 2, padding: [0, 1, 1, 0], bias: true },
    { n: 1, cin: 6, h: 24, w: 24, cout: 40, k: 3, bias: true },
    // The bundled model's training shape (batch 16 of 16² maps, 32 channels).
    { n: 16, cin: 32, h: 16, w: 16, cout: 32, k: 3, bias: true, silu: true, residual: true },
    // A Swin block's MLP fc1 (the full-size UNet's is 192→768 at 64²).
    { n: 1, cin: 96, h: 16, w: 16, cout: 384, k: 1, bias: true, gelu: true },
  ];
  const quick = QUICK_BENCH.conv2d.map(
    ({ cin, cout, size, k, stride, padding }): ConvProblem => ({ n: 1, cin, h: size, w: size, cout, k, stride, padding, bias: true }),
  );
  const cases: OpCase[] = [];
  for (const implementation of CONV_IMPLEMENTATIONS) {
    cases.push(...awkward.map((c, i) => convCase(c, implementation, 100 * i)));
    // The realistic layers re-run split in a few pieces, not in hundreds of planes.
    cases.push(...realistic.map((c, i) => convCase(c, implementation, 7000 + 100 * i, limitFor(convLargestBinding(c) / 4))));
  }
  // The bench times the default implementation.
  cases.push(...quick.map((c, i) => convCase(c, 'conv2d', 8000 + 100 * i)));
  cases.push(
    convGradCase({ x: [1, 1, 1, 1], cout: 1, k: 3 }, 0, { referenceFd: FD_REFERENCE }),
    convGradCase({ x: [2, 3, 5, 7], cout: 6, k: 3 }, 10, { referenceFd: FD_REFERENCE }),
    convGradCase({ x: [3, 5, 9, 6], cout: 4, k: 1 }, 20, { referenceFd: FD_REFERENCE }),
    convGradCase({ x: [2, 4, 8, 8], cout: 5, k: 3, stride: 2, padding: 1 }, 30, { referenceFd: FD_REFERENCE, gpuFd: FD_GPU }),
    convGradCase({ x: [1, 3, 7, 5], cout: 2, k: 3, stride: 2, padding: [0, 1, 1, 0] }, 40, { referenceFd: FD_REFERENCE }),
    convGradCase({ x: [2, 67, 4, 4], cout: 33, k: 3 }, 50, {}),
    // Batches larger than the binding limit run in accumulated runs.
    convGradCase({ x: [5, 6, 9, 10], cout: 7, k: 3 }, 5, {}),
    convGradCase({ x: [2, 5, 6, 7], cout: 9, k: 1, activation: 'gelu' }, 60, { referenceFd: FD_REFERENCE, gpuFd: FD_GPU }),
    convGradCase({ x: [1, 4, 6, 5], cout: 3, k: 3, padding: [1, 0, 2, 1], activation: 'gelu' }, 70, { referenceFd: FD_REFERENCE }),
    convGradCase({ x: [2, 3, 5, 5], cout: 4, k: 3, stride: 2, padding: 1, activation: 'silu' }, 80, { referenceFd: FD_REFERENCE }),
  );
  return cases;
}

// ---------------------------------------------------------------------------------------------
// Attention, the sampler's residual step, resampling

function attentionCase(
  batch: number,
  channels: number,
  tokens: number,
  seed: number,
  options: { heads?: number; scale?: number; kernel?: AttentionKernel } = {},
): OpCase {
  const shape = [batch, channels, tokens];
  // ±2 inputs make scores of a few units: peaked but not one-hot softmax rows.
  const input: OpInput = { shape, lo: -2, hi: 2 };
  return {
    name: `attention N ${batch} C ${channels} T ${tokens} heads ${options.heads ?? 1}${options.scale ? ` scale ${options.scale}` : ''} ${options.kernel}`,
    inputs: [input, input, input],
    seed,
    outputShape: shape,
    run: ([q, k, v]) => attention(q, k, v, options),
    reference: ([q, k, v]) => attentionRef(q, k, v, shape, options),
    tolerance: 1e-5,
    // One head of one batch item is bound whole.
    splitLimit: limitFor((4 * channels * tokens) / (options.heads ?? 1)),
  };
}

function attentionCases(): OpCase[] {
  // Every case on both kernels (the products kernel is the CPU adapters' default).
  return (['streaming', 'products'] as const).flatMap((kernel) => [
    attentionCase(1, 3, 1, 1, { kernel }),
    attentionCase(2, 3, 7, 2, { kernel }),
    attentionCase(1, 32, 64, 3, { kernel }),
    attentionCase(2, 32, 7, 4, { heads: 2, kernel }),
    attentionCase(1, 64, 300, 5, { kernel }),
    attentionCase(2, 64, 64, 6, { heads: 2, kernel }),
    attentionCase(1, 32, 300, 7, { heads: 2, kernel }),
    attentionCase(1, 6, 300, 8, { heads: 2, kernel }),
    attentionCase(1, 100, 33, 9, { kernel }),
    attentionCase(1, 32, 64, 10, { scale: 0.5, kernel }),
    // The autoencoder's width: the variant with two vec4 output columns per invocation.
    attentionCase(1, 512, 40, 11, { kernel }),
    // Scores up to ±C·4·scale = ±256 would overflow exp() without the running max.
    attentionCase(1, 16, 70, 30, { scale: 4, kernel }),
    // Heads and batch items at odd offsets.
    attentionCase(2, 32, 50, 40, { heads: 2, kernel }),
    attentionCase(3, 5, 33, 41, { kernel }),
  ]);
}

function residualStepCases(): OpCase[] {
  const [c1, c2, sigma] = [0.5914728452599349, 0.40852715474006507, 0.9732928];
  return [
    [1, 1, 1, 1],
    [2, 3, 7, 5],
    [1, 3, 64, 65],
    [2, 3, 17, 19],
  ].flatMap((shape) =>
    [false, true].map((withNoise): OpCase => {
      const input: OpInput = { shape, lo: -3, hi: 3 };
      return {
        name: `residualStep ${dims(shape)}${withNoise ? ' with noise' : ''}`,
        inputs: withNoise ? [input, input, input] : [input, input],
        seed: shape[3],
        outputShape: shape,
        run: ([xt, x0, noise]) => residualStep(xt, x0, c1, c2, withNoise ? { tensor: noise, sigma } : undefined),
        reference: ([xt, x0, noise]) => residualStepRef(xt, x0, c1, c2, withNoise ? { data: noise, sigma } : undefined),
        tolerance: 1e-6,
      };
    }),
  );
}

const AWKWARD_IMAGES = [
  [1, 1, 1, 1],
  [1, 3, 1, 5],
  [1, 1, 7, 3],
  [2, 3, 7, 3],
  [2, 1, 5, 9],
];

function resampleCases(): OpCase[] {
  const bicubic = (shape: number[], factor: number, seed: number, lo = -1, hi = 1): OpCase => ({
    name: `bicubicUpsample ×${factor} ${dims(shape)}`,
    inputs: [{ shape, lo, hi }],
    seed,
    outputShape: [shape[0], shape[1], shape[2] * factor, shape[3] * factor],
    run: ([x]) => bicubicUpsample(x, factor),
    reference: ([x]) => bicubicUpsampleRef(x, shape, factor),
    tolerance: 1e-5,
  });
  const nearest = (shape: number[], seed: number, withGradient: boolean): OpCase => ({
    name: `upsampleNearest2x${withGradient ? ' backward' : ''} ${dims(shape)}`,
    inputs: [{ shape }],
    seed,
    outputShape: [shape[0], shape[1], shape[2] * 2, shape[3] * 2],
    run: ([x]) => upsampleNearest2x(x),
    reference: ([x]) => upsampleNearestRef(x, shape, 2),
    // A copy: exact.
    tolerance: 0,
    gradient: withGradient
      ? {
          run: (_, dy) => [upsampleNearest2xBackward(dy)],
          reference: (_, dy) => [upsampleNearest2xBackwardRef(dy, shape)],
          tolerance: 1e-6,
          referenceFd: { step: 1e-2, tolerance: 1e-5 },
        }
      : undefined,
  });
  return [
    ...AWKWARD_IMAGES.flatMap((shape, k) => [1, 2, 3, 4].map((factor) => bicubic(shape, factor, 10 + k))),
    // One output plane larger than the limit, and many planes smaller than it.
    bicubic([2, 3, 9, 13], 4, 31, -2, 2),
    bicubic([3, 5, 4, 6], 4, 31, -2, 2),
    ...AWKWARD_IMAGES.map((shape, k) => nearest(shape, 20 + k, false)),
    nearest([2, 3, 36, 52], 32, false),
    nearest([1, 1, 1, 1], 3, true),
    nearest([2, 3, 3, 7], 3, true),
    // Planes past the binding limit.
    nearest([2, 5, 9, 11], 8, true),
  ];
}

// ---------------------------------------------------------------------------------------------
// Layout: values move without arithmetic, so results must be exact

export type Pad = readonly [top: number, right: number, bottom: number, left: number];

function layoutCase(
  name: string,
  inputShapes: number[][],
  seed: number,
  outputShape: number[],
  run: OpCase['run'],
  reference: OpCase['reference'],
  splitLimit?: number,
): OpCase {
  return { name, inputs: inputShapes.map((shape) => ({ shape })), seed, outputShape, run, reference, tolerance: 0, splitLimit };
}

const concatCase = (aShape: number[], bShape: number[], seed: number): OpCase =>
  layoutCase(
    `concatChannels ${dims(aShape)} + ${dims(bShape)}`,
    [aShape, bShape],
    seed,
    [aShape[0], aShape[1] + bShape[1], aShape[2], aShape[3]],
    ([a, b]) => concatChannels(a, b),
    ([a, b]) => concatChannelsRef(a, aShape, b, bShape),
  );

const unshuffleCase = ([n, c, h, w]: number[], r: number, seed: number): OpCase =>
  layoutCase(
    `pixelUnshuffle r=${r} ${dims([n, c, h, w])}`,
    [[n, c, h, w]],
    seed,
    [n, c * r * r, h / r, w / r],
    ([x]) => pixelUnshuffle(x, r),
    ([x]) => pixelUnshuffleRef(x, [n, c, h, w], r),
  );

/** An output row of pixelShuffle reads r² input planes. */
const shuffleCase = ([n, c, h, w]: number[], r: number, seed: number): OpCase =>
  layoutCase(
    `pixelShuffle r=${r} ${dims([n, c, h, w])}`,
    [[n, c, h, w]],
    seed,
    [n, c / (r * r), h * r, w * r],
    ([x]) => pixelShuffle(x, r),
    ([x]) => pixelShuffleRef(x, [n, c, h, w], r),
    limitFor(4 * r * r * h * w),
  );

const padCase = (shape: number[], pad: Pad, mode: 'reflect' | 'zero', seed: number): OpCase =>
  layoutCase(
    `pad2d ${mode} ${dims(shape)} by ${dims([...pad])}`,
    [shape],
    seed,
    [shape[0], shape[1], shape[2] + pad[0] + pad[2], shape[3] + pad[1] + pad[3]],
    ([x]) => pad2d(x, pad, mode),
    ([x]) => pad2dRef(x, shape, pad, mode),
  );

const cropCase = (shape: number[], top: number, left: number, height: number, width: number, seed: number): OpCase =>
  layoutCase(
    `crop2d ${dims(shape)} at (${top}, ${left}) ${height}×${width}`,
    [shape],
    seed,
    [shape[0], shape[1], height, width],
    ([x]) => crop2d(x, top, left, height, width),
    ([x]) => crop2dRef(x, shape, top, left, height, width),
  );

/** Gradient of concatChannels: the output gradient split back by channels. */
function concatBackwardCase(n: number, ca: number, cb: number, h: number, w: number, seed: number): OpCase {
  const c = concatCase([n, ca, h, w], [n, cb, h, w], seed);
  c.name = `concatChannels backward ${dims([n, ca, h, w])} + ${dims([n, cb, h, w])}`;
  c.gradient = {
    run: (_, dy) => concatChannelsBackward(dy, ca),
    reference: (_, dy) => concatChannelsBackwardRef(dy, [n, ca + cb, h, w], ca),
    tolerance: 0,
    referenceFd: { step: 1e-2, tolerance: 1e-6, inputs: [0] },
  };
  return c;
}

/** Input shapes and paddings of the small pad cases; layout.test.ts also crops them back. */
export const PAD_SHAPES: [number[], Pad][] = [
  [
    [2, 3, 5, 7],
    [4, 6, 4, 0],
  ],
  [
    [1, 1, 1, 1],
    [0, 0, 0, 0],
  ],
  [
    [1, 3, 1, 5],
    [0, 4, 0, 3],
  ],
  [
    [2, 1, 7, 3],
    [6, 2, 3, 1],
  ],
];

function layoutCases(): OpCase[] {
  // Planes of 1920 bytes (several per run) and 6720 bytes (split inside a plane).
  const large = [
    [2, 3, 16, 30],
    [1, 2, 40, 42],
  ];
  const pads: [number[], Pad][] = [...PAD_SHAPES, ...large.map((shape): [number[], Pad] => [shape, [5, 3, 7, 9]])];
  return [
    concatCase([2, 3, 5, 7], [2, 1, 5, 7], 1),
    concatCase([1, 1, 1, 1], [1, 2, 1, 1], 1),
    concatCase([3, 6, 2, 3], [3, 5, 2, 3], 1),
    ...large.map((shape) => concatCase(shape, shape, 17)),
    concatBackwardCase(1, 1, 1, 1, 1, 3),
    concatBackwardCase(2, 3, 5, 3, 7, 3),
    ...[[[2, 3, 6, 4], 2], [[1, 1, 3, 3], 3], [[2, 5, 8, 4], 2], [[1, 2, 3, 5], 1], ...large.map((shape) => [shape, 2])].map(([shape, r]) =>
      unshuffleCase(shape as number[], r as number, 7),
    ),
    ...[
      [[2, 12, 3, 2], 2],
      [[1, 9, 1, 1], 3],
      [[2, 20, 4, 2], 2],
      [[1, 2, 3, 5], 1],
      [[2, 12, 8, 15], 2],
    ].map(([shape, r]) => shuffleCase(shape as number[], r as number, 7)),
    ...pads.flatMap(([shape, pad]) => (['reflect', 'zero'] as const).map((mode) => padCase(shape, pad, mode, 11))),
    padCase([1, 1, 1, 1], [2, 1, 0, 3], 'zero', 12),
    // Crops that undo the pads above, and one inside a map.
    ...pads.map(([[n, c, h, w], [top, right, bottom, left]]) => cropCase([n, c, h + top + bottom, w + left + right], top, left, h, w, 11)),
    ...large.map(([n, c, h, w]) => cropCase([n, c, h + 12, w + 12], 2, 4, h + 1, w + 3, 17)),
    cropCase([2, 3, 7, 9], 2, 3, 4, 5, 13),
  ];
}

// ---------------------------------------------------------------------------------------------
// Swin window attention

interface WindowProblem {
  windowSize: number;
  shift: number;
  headDim: number;
  heads: number;
  batch: number;
  height: number;
  width: number;
}

/** qkv [N, 3·heads·headDim, H, W] and the bias table [(2ws − 1)², heads]. */
function windowAttentionCase(p: WindowProblem, seed: number, gradient = false, keys?: WindowAttentionKeys): OpCase {
  const dim = p.heads * p.headDim;
  const shape = [p.batch, 3 * dim, p.height, p.width];
  const tableShape = [(2 * p.windowSize - 1) ** 2, p.heads];
  const options = { windowSize: p.windowSize, shift: p.shift, headDim: p.headDim, keys };
  // Scores of unit-variance q, k reach ±headDim^½; a spread of ±2 keeps softmax far from one-hot.
  const spread = gradient ? 1.5 : 2;
  return {
    name: `windowAttention${gradient ? ' backward' : ''}${keys ? ` (${keys} keys)` : ''} ws ${p.windowSize} shift ${p.shift} heads ${p.heads}×${p.headDim} ${p.batch}×${p.height}×${p.width}`,
    inputs: [{ shape, lo: -spread, hi: spread }, { shape: tableShape }],
    seed,
    outputShape: [p.batch, dim, p.height, p.width],
    run: ([qkv, table]) => windowAttention(qkv, table, options),
    reference: ([qkv, table]) => windowAttentionRef(qkv, shape, table, options),
    tolerance: 1e-5,
    // The forward binds one head of one batch item whole; the backward does not split: it binds
    // qkv and its per-window attention probabilities (ws² per token and head) whole.
    splitLimit: gradient
      ? limitFor(4 * p.batch * p.height * p.width * Math.max(3 * dim, p.heads * p.windowSize ** 2))
      : limitFor(4 * p.headDim * p.height * p.width),
    gradient: gradient
      ? {
          run: ([qkv, table], dOut) => {
            const g = windowAttentionBackward(qkv, table, dOut, options);
            return [g.dqkv, g.dtable];
          },
          reference: ([qkv, table], dOut) => {
            const g = windowAttentionBackwardRef(qkv, shape, table, dOut, options);
            return [g.dqkv, g.dtable];
          },
          tolerance: 1e-5,
        }
      : undefined,
  };
}

function windowAttentionCases(): OpCase[] {
  const forward: WindowProblem[] = [
    { windowSize: 4, shift: 0, headDim: 8, heads: 1, batch: 1, height: 4, width: 4 },
    { windowSize: 4, shift: 2, headDim: 8, heads: 3, batch: 2, height: 8, width: 12 },
    { windowSize: 4, shift: 2, headDim: 8, heads: 2, batch: 1, height: 16, width: 16 },
    { windowSize: 4, shift: 0, headDim: 32, heads: 1, batch: 2, height: 8, width: 12 },
    { windowSize: 8, shift: 0, headDim: 32, heads: 2, batch: 1, height: 8, width: 8 },
    { windowSize: 8, shift: 4, headDim: 32, heads: 1, batch: 1, height: 8, width: 8 },
    { windowSize: 8, shift: 4, headDim: 8, heads: 3, batch: 2, height: 16, width: 24 },
    { windowSize: 8, shift: 4, headDim: 32, heads: 2, batch: 1, height: 16, width: 16 },
    { windowSize: 2, shift: 1, headDim: 7, heads: 2, batch: 1, height: 4, width: 6 },
    { windowSize: 1, shift: 0, headDim: 5, heads: 1, batch: 2, height: 1, width: 1 },
    { windowSize: 8, shift: 4, headDim: 64, heads: 1, batch: 1, height: 16, width: 8 },
    // Odd sizes: bindings start below the head's data (alignment) and carry an origin.
    { windowSize: 2, shift: 1, headDim: 7, heads: 2, batch: 3, height: 6, width: 10 },
  ];
  const backward: WindowProblem[] = [
    { windowSize: 1, shift: 0, headDim: 1, heads: 1, batch: 1, height: 1, width: 1 },
    { windowSize: 2, shift: 1, headDim: 2, heads: 2, batch: 2, height: 4, width: 4 },
    { windowSize: 3, shift: 0, headDim: 3, heads: 2, batch: 1, height: 6, width: 3 },
    { windowSize: 4, shift: 2, headDim: 2, heads: 1, batch: 2, height: 8, width: 8 },
    { windowSize: 8, shift: 4, headDim: 32, heads: 1, batch: 1, height: 8, width: 8 },
    // Shifted windows wrapping around a non-square plane (rows and columns wrap apart).
    { windowSize: 2, shift: 1, headDim: 3, heads: 2, batch: 2, height: 4, width: 6 },
  ];
  // The forward cases on both ways of reading keys (subgroup is the CPU adapters' default).
  const cases = (['workgroup', 'subgroup'] as const).flatMap((keys) => forward.map((p, i) => windowAttentionCase(p, 10 + i, false, keys)));
  for (const [i, p] of backward.entries()) {
    const c = windowAttentionCase(p, 10 * i, true);
    // Central differences of the reference on the small cases, of the GPU forward on the shifted one.
    if (i < 4) c.gradient!.referenceFd = { step: 1e-2, tolerance: 1e-3 };
    if (i === 3) c.gradient!.gpuFd = { step: 1e-2, tolerance: 1e-2, count: 6 };
    cases.push(c);
  }
  return cases;
}

// ---------------------------------------------------------------------------------------------
// Codebook quantisation: exact, indices and quantized values checked as two cases

/** Codes drawn N(0, 0.7²) like the fixtures' codebooks (Box–Muller). */
export function gaussianCodebook(codes: number, dim: number, seed: number): Float32Array {
  const r = uniform(seed);
  return Float32Array.from({ length: codes * dim }, () => 0.7 * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r()));
}

function quantizeCases(): OpCase[] {
  const problems: [shape: number[], codes: number][] = [
    [[2, 3, 5, 7], 64],
    [[1, 3, 1, 1], 17],
    [[1, 3, 8, 8], 8192], // the release codebook size
    [[2, 5, 3, 11], 300], // two staged tiles, the last one partial
    [[1, 20, 4, 3], 1000], // wide codes: smaller tiles
    [[1, 1, 2, 9], 5],
    [[2, 3, 20, 20], 16], // 4800 bytes per sample
  ];
  return problems.flatMap(([shape, codes]) => {
    const [n, dim, h, w] = shape;
    const inputs: OpInput[] = [
      { shape, lo: -1.5, hi: 1.5 },
      { shape: [codes, dim], values: (count, seed) => gaussianCodebook(count / dim, dim, seed) },
    ];
    const common = { inputs, seed: codes, tolerance: 0, splitLimit: limitFor(4 * codes * dim) };
    return [
      {
        ...common,
        name: `quantize indices ${dims(shape)} × ${codes} codes`,
        outputShape: [n, h, w],
        run: ([z, book]: Tensor[]) => {
          const { quantized, indices } = quantize(z, book);
          quantized.dispose();
          return indices;
        },
        reference: ([z, book]: Float32Array[]) => Float32Array.from(quantizeRef(z, shape, book).indices),
      },
      {
        ...common,
        name: `quantize values ${dims(shape)} × ${codes} codes`,
        outputShape: shape,
        run: ([z, book]: Tensor[]) => {
          const { quantized, indices } = quantize(z, book);
          indices.dispose();
          return quantized;
        },
        reference: ([z, book]: Float32Array[]) => quantizeRef(z, shape, book).quantized,
      },
    ];
  });
}

// ---------------------------------------------------------------------------------------------

/** The bench's quick kernel rows (bench/kernels.ts), which the table checks as well. */
export const QUICK_BENCH = {
  conv2d: [
    { cin: 16, cout: 16, size: 16, k: 3 as const, stride: undefined, padding: undefined },
    { cin: 16, cout: 24, size: 16, k: 1 as const, stride: undefined, padding: undefined },
    { cin: 16, cout: 16, size: 16, k: 3 as const, stride: 2 as const, padding: [0, 1, 1, 0] as [number, number, number, number] },
  ],
  groupNorm: [{ channels: 32, size: 16 }],
  matmul: [{ m: 64, k: 64, n: 64 }],
};

function quickBenchCases(): OpCase[] {
  return [
    ...QUICK_BENCH.groupNorm.map(({ channels, size }, i) =>
      groupNormCase({ shape: [1, channels, size, size], eps: 1e-5, silu: true }, 300 + i),
    ),
  ];
}

/** Every case of the table. */
export function opCases(): OpCase[] {
  return [
    ...elementwiseCases(),
    ...matmulCases(),
    ...softmaxCases(),
    ...groupNormCases(),
    ...convCases(),
    ...attentionCases(),
    ...residualStepCases(),
    ...resampleCases(),
    ...layoutCases(),
    ...windowAttentionCases(),
    ...quantizeCases(),
    ...quickBenchCases(),
  ];
}
