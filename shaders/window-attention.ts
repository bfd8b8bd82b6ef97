import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { defineKernel, kernelFamily } from './declare.js';
import { DIVIDE_WGSL } from './winograd.js';

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
 * its row of scores in a private array; the window's queries, keys, then values pass through
 * one workgroup tile [token][channel] (so ws = 8 with headDim = 64 fits in 16 KiB), and the
 * head's column of the bias table sits beside it. Every vec4 read from the tile feeds four
 * multiply-adds.
 *
 * Only the register count (headDim / 4, rounded up) is compiled in; window size and head width
 * are uniforms and every loop keeps a runtime trip count. On lavapipe each memory access site
 * becomes a loop over SIMD lanes, so staging goes through loops rather than unrolled loads:
 * that keeps the compile to a few seconds (a fully unrolled version took tens).
 *
 * Token k of window (wy, wx) sits at (wy·ws + k / ws, wx·ws + k mod ws) in the map rolled by
 * −shift, which is pixel ((y + shift) mod H, (x + shift) mod W) of the input; rolling the result
 * back by +shift puts its output at that same pixel, so the roll costs only index arithmetic.
 *
 * q, k and v are bound separately (ranges of the same qkv buffer) and every binding carries its
 * origin: the global element it starts at, so chunked dispatches index with global positions.
 */
export const windowAttentionKernel = kernelFamily((headVecs: number, keys: WindowAttentionKeys = 'workgroup') => {
  const broadcast = keys === 'subgroup';
  return defineKernel({
    name: 'windowAttention',
    uniforms: [
      { name: 'height', type: 'u32' },
      { name: 'width', type: 'u32' },
      { name: 'window', type: 'u32' },
      { name: 'shift', type: 'u32' },
      { name: 'head_dim', type: 'u32' },
      { name: 'windows_x', type: 'u32' },
      { name: 'channels', type: 'u32' },
      { name: 'heads', type: 'u32' },
      { name: 'first_unit', type: 'u32' },
      { name: 'q_origin', type: 'u32' },
      { name: 'k_origin', type: 'u32' },
      { name: 'v_origin', type: 'u32' },
      { name: 'out_origin', type: 'u32' },
      { name: 'scale', type: 'f32' },
      { name: 'inv_window', type: 'f32' },
    ],
    bindings: [
      { name: 'q_src', type: 'f32', access: 'read' },
      { name: 'k_src', type: 'f32', access: 'read' },
      { name: 'v_src', type: 'f32', access: 'read' },
      { name: 'bias_table', type: 'f32', access: 'read' },
      { name: 'out', type: 'f32', access: 'read_write' },
    ],
    workgroupSize: MAX_TOKENS,
    ...(broadcast ? { extensions: ['subgroups'], extraBuiltins: ['@builtin(subgroup_invocation_id) lane: u32'] } : {}),
    functions: wgsl`
${broadcast ? DIVIDE_WGSL : ''}

const VECS = ${headVecs}u;
const MASK_VALUE = -100.0;

// The window's q, k, v or output in turn: [token][channel / 4], zero past the head width.
var<workgroup> tile: array<vec4<f32>, ${MAX_TOKENS * headVecs}>;
var<workgroup> bias: array<f32, ${MAX_BIAS_ROWS}>;

// The reference's shift-mask region of a row of the runtime map (rows only, see MODEL_SPEC).
fn shift_region(row: u32) -> u32 {
  if (row + p.window < p.height) { return 0u; }
  if (row + p.shift < p.height) { return 1u; }
  return 2u;
}

`,
    main: wgsl`
  let token = lid;
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
  // Element of this token's channel 0 of head h in q (k and v follow D and 2D channels later).
  let q_at = (n * 3u * p.channels + h * p.head_dim) * plane + y * p.width + x;
  let k_at = q_at + p.channels * plane;
  let v_at = k_at + p.channels * plane;
  let mine = token * VECS;
  // A runtime bound (= 4·VECS), so the compiler keeps the staging loops as loops.
  let padded_dim = (p.head_dim + 3u) & ~3u;

  for (var c = 0u; c < padded_dim; c++) {
    var value = 0.0;
    if (in_window && c < p.head_dim) { value = q_src[q_at + c * plane - p.q_origin] * p.scale; }
    tile[mine + c / 4u][c % 4u] = value;
  }
  for (var e = token; e < span * span; e += ${MAX_TOKENS}u) {
    bias[e] = bias_table[e * p.heads + h];
  }
${unrolled(headVecs, (v) => `  let q_${v} = tile[mine + ${v}u];`)}
  workgroupBarrier();
  for (var c = 0u; c < padded_dim; c++) {
    var value = 0.0;
    if (in_window && c < p.head_dim) { value = k_src[k_at + c * plane - p.k_origin]; }
    tile[mine + c / 4u][c % 4u] = value;
  }
  workgroupBarrier();

  let row = token / ws;
  let col = token % ws;
  let masked = p.shift > 0u;
  let region = shift_region(wy * ws + col);
  var scores: array<f32, ${MAX_TOKENS}>;
  var top = -3.0e38;
#if ${broadcast}
  // Keys in groups of 8: lane l loads key j0 + l (its vectors, bias offset and mask region)
  // and hands them to the subgroup, so each lane loads an eighth of the keys.
  let query_bias = (row + ws - 1u) * span + col + ws - 1u;
  for (var j0 = 0u; j0 < tokens; j0 += 8u) {
    let mine_key = min(j0 + lane, ${MAX_TOKENS - 1}u);
    let key_row = divide(mine_key, ws, p.inv_window);
    let key_col = mine_key - key_row * ws;
    let key_bias = key_row * span + key_col;
    let key_region = shift_region(wy * ws + key_col);
${unrolled(headVecs, (v) => `    let k_${v} = tile[mine_key * VECS + ${v}u];`)}
${unrolled(
  8,
  (l) => `    if (j0 + ${l}u < tokens) {
      var s = bias[query_bias - subgroupBroadcast(key_bias, ${l}u)];
${unrolled(headVecs, (v) => `      s += dot(q_${v}, subgroupBroadcast(k_${v}, ${l}u));`)}
      if (masked && subgroupBroadcast(key_region, ${l}u) != region) {
        s += MASK_VALUE;
      }
      scores[j0 + ${l}u] = s;
      top = max(top, s);
    }`,
)}
  }
#else
  for (var jr = 0u; jr < ws; jr++) {
    // Relative position (row − jr + ws − 1, col − jc + ws − 1) in the bias table, jc = 0.
    let bias_row = (row + ws - 1u - jr) * span + col + ws - 1u;
    for (var jc = 0u; jc < ws; jc++) {
      let j = jr * ws + jc;
      let at = j * VECS;
      var s = bias[bias_row - jc];
${unrolled(headVecs, (v) => `      s += dot(q_${v}, tile[at + ${v}u]);`)}
      if (masked && shift_region(wy * ws + jc) != region) {
        s += MASK_VALUE;
      }
      scores[j] = s;
      top = max(top, s);
    }
  }
#endif
  var sum = 0.0;
  for (var j = 0u; j < tokens; j++) {
    let e = exp(scores[j] - top);
    scores[j] = e;
    sum += e;
  }
  workgroupBarrier();
  for (var c = 0u; c < padded_dim; c++) {
    var value = 0.0;
    if (in_window && c < p.head_dim) { value = v_src[v_at + c * plane - p.v_origin]; }
    tile[mine + c / 4u][c % 4u] = value;
  }
  workgroupBarrier();

  let inv_sum = 1.0 / sum;
${unrolled(headVecs, (v) => `  var o_${v} = vec4<f32>(0.0);`)}
#if ${broadcast}
  // Values in groups of 8 keys as the scores were; the scores past the last key are 0.
  for (var j0 = 0u; j0 < tokens; j0 += 8u) {
    let mine_key = min(j0 + lane, ${MAX_TOKENS - 1}u);
${unrolled(headVecs, (v) => `    let v_${v} = tile[mine_key * VECS + ${v}u];`)}
${unrolled(
  8,
  (l) => `    {
      let weight = vec4<f32>(scores[min(j0 + ${l}u, ${MAX_TOKENS - 1}u)] * inv_sum);
${unrolled(headVecs, (v) => `      o_${v} = fma(weight, subgroupBroadcast(v_${v}, ${l}u), o_${v});`)}
    }`,
)}
  }
#else
  for (var j = 0u; j < tokens; j++) {
    let weight = vec4<f32>(scores[j] * inv_sum);
    let at = j * VECS;
${unrolled(headVecs, (v) => `    o_${v} = fma(weight, tile[at + ${v}u], o_${v});`)}
  }
#endif
  workgroupBarrier();
${unrolled(headVecs, (v) => `  tile[mine + ${v}u] = o_${v};`)}
  if (in_window) {
    let out_at = (n * p.channels + h * p.head_dim) * plane + y * p.width + x - p.out_origin;
    for (var c = 0u; c < p.head_dim; c++) {
      out[out_at + c * plane] = tile[mine + c / 4u][c % 4u];
    }
  }`,
  });
});

/**
 * How the score and output loops read the window's keys and values from workgroup memory:
 * `workgroup`, every invocation reads each key; `subgroup`, for CPU adapters (where every load
 * is a scalar access per lane), each lane of an 8-lane subgroup reads one key of eight and
 * subgroupBroadcast hands it to the others.
 */
export type WindowAttentionKeys = 'workgroup' | 'subgroup';

/** vec4 registers per invocation for a head width: the pipeline variant to use. */
export const windowAttentionHeadVecs = (headDim: number): number => Math.ceil(headDim / 4);
