/** The shape rules of conv2d, shared by the GPU kernels, their backward and the CPU reference. */

export type Conv2dPadding = number | readonly [top: number, right: number, bottom: number, left: number];

export interface Conv2dGeometryOptions {
  stride?: 1 | 2;
  /** Zero padding; default (k − 1)/2 on every side. */
  padding?: Conv2dPadding;
}

/** Everything a conv2d kernel needs to know about its problem, validated. */
export interface Conv2dGeometry {
  batch: number;
  inChannels: number;
  inHeight: number;
  inWidth: number;
  outChannels: number;
  kernelSize: 1 | 3;
  stride: 1 | 2;
  padTop: number;
  padRight: number;
  padBottom: number;
  padLeft: number;
  outHeight: number;
  outWidth: number;
}

const fmt = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

/**
 * Validates a conv2d problem (NCHW input, OIHW weight as in PyTorch checkpoints) and computes
 * its output size: Ho = floor((H + padTop + padBottom − k)/stride) + 1, likewise Wo.
 */
export function conv2dGeometry(
  op: string,
  xShape: readonly number[],
  wShape: readonly number[],
  options: Conv2dGeometryOptions = {},
): Conv2dGeometry {
  if (xShape.length !== 4) throw new Error(`${op}: input must be [N, C, H, W], got ${fmt(xShape)}`);
  if (wShape.length !== 4) throw new Error(`${op}: weight must be [Cout, Cin, k, k], got ${fmt(wShape)}`);
  const [batch, inChannels, inHeight, inWidth] = xShape;
  const [outChannels, weightInChannels, kh, kw] = wShape;
  if (kh !== kw) throw new Error(`${op}: weight ${fmt(wShape)} is not square (${kh}×${kw})`);
  if (kh !== 1 && kh !== 3) throw new Error(`${op}: weight ${fmt(wShape)} has kernel size ${kh}; only 1 and 3 are supported`);
  if (weightInChannels !== inChannels) {
    throw new Error(`${op}: weight ${fmt(wShape)} expects ${weightInChannels} input channels but input ${fmt(xShape)} has ${inChannels}`);
  }
  if ([batch, inChannels, inHeight, inWidth, outChannels].some((d) => d < 1)) {
    throw new Error(`${op}: empty input ${fmt(xShape)} or weight ${fmt(wShape)}`);
  }
  const stride = options.stride ?? 1;
  if (stride !== 1 && stride !== 2) throw new Error(`${op}: stride must be 1 or 2, got ${stride}`);
  const kernelSize = kh as 1 | 3;
  const padding = options.padding ?? (kernelSize - 1) / 2;
  const sides = typeof padding === 'number' ? [padding, padding, padding, padding] : padding;
  if (sides.length !== 4 || sides.some((p) => !Number.isInteger(p) || p < 0)) {
    throw new Error(`${op}: padding must be non-negative integers, one or [top, right, bottom, left], got ${String(padding)}`);
  }
  const [padTop, padRight, padBottom, padLeft] = sides;
  const outHeight = Math.floor((inHeight + padTop + padBottom - kernelSize) / stride) + 1;
  const outWidth = Math.floor((inWidth + padLeft + padRight - kernelSize) / stride) + 1;
  if (outHeight < 1 || outWidth < 1) {
    throw new Error(`${op}: input ${fmt(xShape)} with padding ${String(padding)} is smaller than the ${kernelSize}×${kernelSize} kernel`);
  }
  return {
    batch,
    inChannels,
    inHeight,
    inWidth,
    outChannels,
    kernelSize,
    stride,
    padTop,
    padRight,
    padBottom,
    padLeft,
    outHeight,
    outWidth,
  };
}
