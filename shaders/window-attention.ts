import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';

/** Largest window side the kernel supports: one invocation per token, ws² ≤ 64. */
export const WINDOW_ATTENTION_MAX_WINDOW = 8;
/** Largest head width the kernel supports (16 vec4 registers for the query and the output). */
export const WINDOW_ATTENTION_MAX_HEAD_DIM = 64;
const MAX_TOKENS = WINDOW_ATTENTION_MAX_WINDOW ** 2;
const MAX_BIAS_ROWS = (2 * WINDOW_ATTENTION_MAX_WINDOW - 1) ** 2;

/** `count` copies of `line(i)`: register blocks are written out, never indexed. */
function unrolled(count: number, line: (i: number) => string): string {
  return Array.from({ length: count }, (_, i) => line(i)).join('\n');
}

/**
 * Fused Swin window attention: one workgroup per (window, head, batch item), one invocation per
 * token of the window. Each invocation holds its query and its output row in vec4 registers and
 * its row of scores in a private array; the window's keys, then its values, are staged in one
 * workgroup tile [token][channel] (reused, so ws = 8 with headDim = 64 fits in 16 KiB), and the
 * head's column of the bias table beside it. Every vec4 loaded from the tile feeds four
 * multiply-adds.
 *
 * Only the head width is compiled in (the register count); the window size is a uniform and the
 * loops over tokens keep a runtime trip count, so the compiler does not unroll them (fully
 * unrolled 64×32 loops took lavapipe tens of seconds to compile).
 *
 * Token k of window (wy, wx) sits at (wy·ws + k / ws, wx·ws + k mod ws) in the map rolled by
 * −shift, which is pixel ((y + shift) mod H, (x + shift) mod W) of the input; rolling the result
 * back by +shift puts its output at that same pixel, so the roll costs only index arithmetic.
 *
 * q, k and v are bound separately (ranges of the same qkv buffer) and every binding carries its
 * origin: the global element it starts at, so chunked dispatches index with global positions.
 */
export function windowAttentionShader(headDim: number): string {
  const vecs = Math.ceil(headDim / 4);
  const lanes = ['x', 'y', 'z', 'w'];
  return wgsl`
struct P {
  height: u32,
  width: u32,
  window: u32,
  shift: u32,
  windows_x: u32,
  channels: u32,
  heads: u32,
  first_unit: u32,
  q_origin: u32,
  k_origin: u32,
  v_origin: u32,
  out_origin: u32,
  scale: f32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> q_src: array<f32>;
@group(0) @binding(2) var<storage, read> k_src: array<f32>;
@group(0) @binding(3) var<storage, read> v_src: array<f32>;
@group(0) @binding(4) var<storage, read> bias_table: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

const HEAD_DIM = ${headDim}u;
const VECS = ${vecs}u;
const MASK_VALUE = -100.0;

// Keys during the score pass, values during the output pass: [token][channel / 4].
var<workgroup> tile: array<vec4<f32>, ${MAX_TOKENS * vecs}>;
var<workgroup> bias: array<f32, ${MAX_BIAS_ROWS}>;

// The reference's shift-mask region of a row of the runtime map (rows only, see MODEL_SPEC).
fn shift_region(row: u32) -> u32 {
  if (row + p.window < p.height) { return 0u; }
  if (row + p.shift < p.height) { return 1u; }
  return 2u;
}

// Channels 4v … 4v + 3 of a token (zero past the head width), from its channel-0 element.
fn load4(src_is: u32, at: u32, plane: u32, v: u32) -> vec4<f32> {
  var r = vec4<f32>(0.0);
  for (var l = 0u; l < 4u; l++) {
    let c = 4u * v + l;
    if (c < HEAD_DIM) {
      let e = at + c * plane;
      if (src_is == 0u) { r[l] = q_src[e - p.q_origin]; }
      else if (src_is == 1u) { r[l] = k_src[e - p.k_origin]; }
      else { r[l] = v_src[e - p.v_origin]; }
    }
  }
  return r;
}

@compute @workgroup_size(${MAX_TOKENS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) token: u32) {
  let ws = p.window;
  let tokens = ws * ws;
  let span = 2u * ws - 1u;
  let in_window = token < tokens;
  let wy = wid.x / p.windows_x;
  let wx = wid.x % p.windows_x;
  let unit = p.first_unit + wid.y;
  let n = unit / p.heads;
  let h = unit % p.heads;
  let plane = p.height * p.width;
  let y = (wy * ws + token / ws + p.shift) % p.height;
  let x = (wx * ws + token % ws + p.shift) % p.width;
  let q_at = (n * 3u * p.channels + h * HEAD_DIM) * plane + y * p.width + x;
  let k_at = q_at + p.channels * plane;
  let v_at = k_at + p.channels * plane;

${unrolled(vecs, (v) => `  var q_${v} = vec4<f32>(0.0);
  var o_${v} = vec4<f32>(0.0);`)}
  if (in_window) {
${unrolled(vecs, (v) => `    q_${v} = load4(0u, q_at, plane, ${v}u) * p.scale;
    tile[token * VECS + ${v}u] = load4(1u, k_at, plane, ${v}u);`)}
  }
  for (var e = token; e < span * span; e += ${MAX_TOKENS}u) {
    bias[e] = bias_table[e * p.heads + h];
  }
  workgroupBarrier();

  let row = token / ws;
  let col = token % ws;
  let region = shift_region(wy * ws + col);
  var scores: array<f32, ${MAX_TOKENS}>;
  var sum = 0.0;
  if (in_window) {
    var top = -3.0e38;
    for (var j = 0u; j < tokens; j++) {
      let at = j * VECS;
      var s = bias[(row + ws - 1u - j / ws) * span + (col + ws - 1u - j % ws)]${unrolled(vecs, (v) => `
        + dot(q_${v}, tile[at + ${v}u])`)};
      if (p.shift > 0u && shift_region(wy * ws + j % ws) != region) {
        s += MASK_VALUE;
      }
      scores[j] = s;
      top = max(top, s);
    }
    for (var j = 0u; j < tokens; j++) {
      let e = exp(scores[j] - top);
      scores[j] = e;
      sum += e;
    }
  }
  workgroupBarrier();

  if (in_window) {
${unrolled(vecs, (v) => `    tile[token * VECS + ${v}u] = load4(2u, v_at, plane, ${v}u);`)}
  }
  workgroupBarrier();

  if (in_window) {
    for (var j = 0u; j < tokens; j++) {
      let weight = scores[j];
      let at = j * VECS;
${unrolled(vecs, (v) => `      o_${v} = fma(vec4<f32>(weight), tile[at + ${v}u], o_${v});`)}
    }
    let out_at = (n * p.channels + h * HEAD_DIM) * plane + y * p.width + x - p.out_origin;
    let inv_sum = 1.0 / sum;
${Array.from({ length: headDim }, (_, c) => `    out[out_at + ${c}u * plane] = o_${c >> 2}.${lanes[c & 3]} * inv_sum;`).join('\n')}
  }
}`;
}
