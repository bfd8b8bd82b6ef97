import { defineKernel } from './declare.js';
import { WINDOW_ATTENTION_MAX_HEAD_DIM, WINDOW_ATTENTION_MAX_WINDOW } from './window-attention.js';

const MAX_TOKENS = WINDOW_ATTENTION_MAX_WINDOW ** 2;

/**
 * Uniforms and helpers shared by the window-attention backward kernels. Token k = ty·ws + tx of
 * window (wy, wx) lives at pixel ((wy·ws + ty + shift) mod H, (wx·ws + tx + shift) mod W),
 * exactly as in the forward; the shift mask is constant and recomputed from the geometry. The
 * loops run over (ty, tx) so that no token index is divided (the kernels were 4× slower so).
 * The scratch holds, per (unit = n·heads + h, window, query i), the probabilities P[i][·] and
 * the score gradients dS[i][·].
 */
const UNIFORMS = [
  ...(['height', 'width', 'window', 'shift', 'windows_x', 'windows', 'channels', 'heads', 'head_dim', 'batch'] as const).map((name) => ({
    name,
    type: 'u32' as const,
  })),
  { name: 'scale', type: 'f32' },
] as const;

const COMMON = /* wgsl */ `
const MASK_VALUE = -100.0;
const MAX_TOKENS = ${MAX_TOKENS}u;

fn shift_region(row: u32) -> u32 {
  if (row + p.window < p.height) { return 0u; }
  if (row + p.shift < p.height) { return 1u; }
  return 2u;
}

// Column (.x) and row (.y) of window w's first token before the shift.
fn window_corner(w: u32) -> vec2<u32> {
  let wy = w / p.windows_x;
  return vec2<u32>(w - wy * p.windows_x, wy) * p.window;
}

// (v + shift) mod size for v < size, without the integer division of a % (on CPU adapters an
// integer division is a scalar loop over the lanes). Token (ty, tx) of the window with corner c
// lives at pixel shifted(c.y + ty, H)·W + shifted(c.x + tx, W).
fn shifted(v: u32, size: u32) -> u32 {
  let s = v + p.shift;
  return select(s, s - size, s >= size);
}

// Element offsets in qkv (q, k, v) and in the output (o) of the channels of unit = n·heads + h.
struct HeadOffsets { q: u32, k: u32, v: u32, o: u32 }
fn head_offsets(unit: u32) -> HeadOffsets {
  let n = unit / p.heads;
  let h = unit % p.heads;
  let plane = p.height * p.width;
  let q = (n * 3u * p.channels + h * p.head_dim) * plane;
  return HeadOffsets(q, q + p.channels * plane, q + 2u * p.channels * plane, (n * p.channels + h * p.head_dim) * plane);
}

fn scratch_row(unit: u32, w: u32, i: u32) -> u32 {
  let tokens = p.window * p.window;
  return ((unit * p.windows + w) * tokens + i) * tokens;
}`;

/**
 * Pass 1, one invocation per query token (workgroup = window × unit): recompute the scores and
 * softmax P, then dP = dO·vᵀ, dS = P ⊙ (dP − Σ P·dP) and dq = scale·dS·k. P and dS go to the
 * scratch for the key-side pass and the bias-table pass.
 */
export const WINDOW_ATTENTION_GRAD_QUERY_KERNEL = defineKernel({
  name: 'windowAttentionBackward queries',
  uniforms: UNIFORMS,
  bindings: [
    { name: 'qkv', type: 'f32', access: 'read' },
    { name: 'bias_table', type: 'f32', access: 'read' },
    { name: 'd_out', type: 'f32', access: 'read' },
    { name: 'probs', type: 'f32', access: 'read_write' },
    { name: 'd_scores', type: 'f32', access: 'read_write' },
    { name: 'd_qkv', type: 'f32', access: 'read_write' },
  ],
  workgroupSize: MAX_TOKENS,
  functions: /* wgsl */ `
${COMMON}`,
  main: /* wgsl */ `
  let i = lid;
  let ws = p.window;
  let tokens = ws * ws;
  if (i >= tokens) { return; }
  let w = wid.x;
  let unit = wid.y;
  let h = unit % p.heads;
  let plane = p.height * p.width;
  let base = head_offsets(unit);
  let corner = window_corner(w);
  let iy = i / ws;
  let ix = i - iy * ws;
  let pix_i = shifted(corner.y + iy, p.height) * p.width + shifted(corner.x + ix, p.width);
  let span = 2u * ws - 1u;
  let region_i = shift_region(corner.y + ix);
  var q: array<f32, ${WINDOW_ATTENTION_MAX_HEAD_DIM}>;
  var d_o: array<f32, ${WINDOW_ATTENTION_MAX_HEAD_DIM}>;
  for (var c = 0u; c < p.head_dim; c++) {
    q[c] = qkv[base.q + c * plane + pix_i];
    d_o[c] = d_out[base.o + c * plane + pix_i];
  }
  var prob: array<f32, ${MAX_TOKENS}>;
  var pix: array<u32, ${MAX_TOKENS}>;
  var top = -3.0e38;
  for (var ty = 0u; ty < ws; ty++) {
    let row = shifted(corner.y + ty, p.height) * p.width;
    let bias_row = (iy + ws - 1u - ty) * span + ix + ws - 1u;
    for (var tx = 0u; tx < ws; tx++) {
      let j = ty * ws + tx;
      let pix_j = row + shifted(corner.x + tx, p.width);
      pix[j] = pix_j;
      var dot = 0.0;
      for (var c = 0u; c < p.head_dim; c++) { dot += q[c] * qkv[base.k + c * plane + pix_j]; }
      // The relative-position bias plus the shift mask, as the forward adds them.
      var offset = bias_table[(bias_row - tx) * p.heads + h];
      if (p.shift > 0u && shift_region(corner.y + tx) != region_i) { offset += MASK_VALUE; }
      prob[j] = dot * p.scale + offset;
      top = max(top, prob[j]);
    }
  }
  var total = 0.0;
  for (var j = 0u; j < tokens; j++) {
    prob[j] = exp(prob[j] - top);
    total += prob[j];
  }
  var d_prob: array<f32, ${MAX_TOKENS}>;
  var weighted = 0.0;
  for (var j = 0u; j < tokens; j++) {
    prob[j] /= total;
    var dot = 0.0;
    for (var c = 0u; c < p.head_dim; c++) { dot += d_o[c] * qkv[base.v + c * plane + pix[j]]; }
    d_prob[j] = dot;
    weighted += prob[j] * dot;
  }
  let row = scratch_row(unit, w, i);
  for (var j = 0u; j < tokens; j++) {
    d_prob[j] = prob[j] * (d_prob[j] - weighted);
    probs[row + j] = prob[j];
    d_scores[row + j] = d_prob[j];
  }
  for (var c = 0u; c < p.head_dim; c++) {
    var s = 0.0;
    for (var j = 0u; j < tokens; j++) { s += d_prob[j] * qkv[base.k + c * plane + pix[j]]; }
    d_qkv[base.q + c * plane + pix_i] = s * p.scale;
  }`,
});

/** Pass 2, one invocation per key token j: dk = scale·dSᵀ·q and dv = Pᵀ·dO. */
export const WINDOW_ATTENTION_GRAD_KEY_KERNEL = defineKernel({
  name: 'windowAttentionBackward keys',
  uniforms: UNIFORMS,
  bindings: [
    { name: 'qkv', type: 'f32', access: 'read' },
    { name: 'd_out', type: 'f32', access: 'read' },
    { name: 'probs', type: 'f32', access: 'read' },
    { name: 'd_scores', type: 'f32', access: 'read' },
    { name: 'd_qkv', type: 'f32', access: 'read_write' },
  ],
  workgroupSize: MAX_TOKENS,
  functions: /* wgsl */ `
${COMMON}`,
  main: /* wgsl */ `
  let j = lid;
  let ws = p.window;
  let tokens = ws * ws;
  if (j >= tokens) { return; }
  let w = wid.x;
  let unit = wid.y;
  let plane = p.height * p.width;
  let base = head_offsets(unit);
  let corner = window_corner(w);
  let jy = j / ws;
  let pix_j = shifted(corner.y + jy, p.height) * p.width + shifted(corner.x + j - jy * ws, p.width);
  var prob: array<f32, ${MAX_TOKENS}>;
  var d_score: array<f32, ${MAX_TOKENS}>;
  var pix: array<u32, ${MAX_TOKENS}>;
  for (var ty = 0u; ty < ws; ty++) {
    let row = shifted(corner.y + ty, p.height) * p.width;
    for (var tx = 0u; tx < ws; tx++) {
      let i = ty * ws + tx;
      let at = scratch_row(unit, w, i) + j;
      prob[i] = probs[at];
      d_score[i] = d_scores[at];
      pix[i] = row + shifted(corner.x + tx, p.width);
    }
  }
  for (var c = 0u; c < p.head_dim; c++) {
    var dk = 0.0;
    var dv = 0.0;
    for (var i = 0u; i < tokens; i++) {
      dk += d_score[i] * qkv[base.q + c * plane + pix[i]];
      dv += prob[i] * d_out[base.o + c * plane + pix[i]];
    }
    d_qkv[base.k + c * plane + pix_j] = dk * p.scale;
    d_qkv[base.v + c * plane + pix_j] = dv;
  }`,
});

/**
 * Pass 3: the bias-table gradient. The forward gathers table row e for every (i, j) whose
 * relative offset is e, so the backward is a scatter-add; written as a gather instead (no
 * atomics, deterministic): invocation (e, h) sums dS over the batch, the windows and the
 * queries i whose partner j = i − offset(e) lies inside the window.
 */
export const WINDOW_ATTENTION_GRAD_BIAS_KERNEL = defineKernel({
  name: 'windowAttentionBackward bias table',
  uniforms: UNIFORMS,
  bindings: [
    { name: 'd_scores', type: 'f32', access: 'read' },
    { name: 'd_table', type: 'f32', access: 'read_write' },
  ],
  workgroupSize: 64,
  functions: /* wgsl */ `
${COMMON}`,
  main: /* wgsl */ `
  let ws = p.window;
  let span = 2u * ws - 1u;
  let index = gid.x;
  if (index >= span * span * p.heads) { return; }
  let e = index / p.heads;
  let h = index % p.heads;
  let dr = i32(e / span) - i32(ws - 1u);
  let dc = i32(e % span) - i32(ws - 1u);
  var s = 0.0;
  for (var n = 0u; n < p.batch; n++) {
    let unit = n * p.heads + h;
    for (var w = 0u; w < p.windows; w++) {
      for (var iy = 0u; iy < ws; iy++) {
        let rj = i32(iy) - dr;
        if (rj < 0 || rj >= i32(ws)) { continue; }
        for (var ix = 0u; ix < ws; ix++) {
          let cj = i32(ix) - dc;
          if (cj < 0 || cj >= i32(ws)) { continue; }
          s += d_scores[scratch_row(unit, w, iy * ws + ix) + u32(rj) * ws + u32(cj)];
        }
      }
    }
  }
  d_table[index] = s;`,
});
