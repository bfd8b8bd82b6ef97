import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { defineKernel, kernelFamily } from './declare.js';

/** Queries per workgroup. */
export const ATTENTION_BLOCK_QUERIES = 32;
/** Keys per online-softmax step. */
const BLOCK_KEYS = 128;
/** Channels of q and k staged per step of the score product. */
const CHANNEL_CHUNK = 16;
const THREADS = 256;
/** Invocations along the channels in the output product; each owns vec4 columns oc + 64·m. */
const OUTPUT_COLUMNS = 64;

/** Largest head width the kernel supports: 8 × 2 vec4 output accumulators per invocation. */
export const ATTENTION_MAX_HEAD_DIM = 512;

/**
 * vec4 output columns per invocation for a head width (1 up to 256 channels, else 2): the
 * pipeline variant to use. The head width itself is a uniform, so one pipeline serves all widths
 * of a variant.
 */
export function attentionColumns(headDim: number): number {
  return headDim > 4 * OUTPUT_COLUMNS ? 2 : 1;
}

/** `count` copies of `line(i)`: register blocks are written out, never indexed. */
function unrolled(count: number, line: (i: number) => string): string {
  return Array.from({ length: count }, (_, i) => line(i)).join('\n');
}

/**
 * Flash-style self-attention over channel-first [N, C, T] tensors: one workgroup of 256
 * invocations per block of 32 queries of one head. It streams over blocks of 128 keys keeping a
 * running max and sum per query (online softmax), so no score matrix beyond 32×128 exists.
 *
 * Per key block: the score product S = qᵀk runs over the head's channels in chunks of 16
 * staged in workgroup memory, each invocation accumulating a 4×4 block of S (4 queries × 4
 * keys) in registers. Scaled scores go to workgroup memory; one invocation per query turns its
 * row into probabilities and updates the running max and sum. The output product then streams
 * v through workgroup memory a few keys at a time, each invocation accumulating 8 queries ×
 * 4·columns channels (vec4 columns oc + 64·m, m < columns) in registers, rescaled by the
 * change of the running max. The register blocks make every workgroup-memory load feed 8–16
 * multiply-adds.
 *
 * q, k, v and out are bound separately and each binding carries its origin (the global element
 * it starts at), so chunked dispatches index with global positions.
 */
export const attentionKernel = kernelFamily((columns: number) => {
  // Keys of v staged per step, so the staged slice of v is 8 KiB whatever the head width.
  const vKeys = 8 / columns;
  const vRow = OUTPUT_COLUMNS * columns;
  const qVecs = ATTENTION_BLOCK_QUERIES / 4;
  const kVecs = BLOCK_KEYS / 4;
  const kAt = CHANNEL_CHUNK * qVecs;
  const stageVecs = Math.max(kAt + CHANNEL_CHUNK * kVecs, vKeys * vRow);
  const acc = (a: number, m: number): string => `acc_${a}_${m}`;
  const lanes = ['x', 'y', 'z', 'w'];
  return defineKernel({
    name: 'attention',
    uniforms: [
      { name: 'tokens', type: 'u32' },
      { name: 'head_dim', type: 'u32' },
      { name: 'channels', type: 'u32' },
      { name: 'heads', type: 'u32' },
      { name: 'first_unit', type: 'u32' },
      { name: 'q_origin', type: 'u32' },
      { name: 'k_origin', type: 'u32' },
      { name: 'v_origin', type: 'u32' },
      { name: 'out_origin', type: 'u32' },
      { name: 'scale', type: 'f32' },
    ],
    bindings: [
      { name: 'q_src', type: 'f32', access: 'read' },
      { name: 'k_src', type: 'f32', access: 'read' },
      { name: 'v_src', type: 'f32', access: 'read' },
      { name: 'out', type: 'f32', access: 'read_write' },
    ],
    workgroupSize: THREADS,
    functions: wgsl`

const LOWEST = -3.0e38;

// Scores, then probabilities, of the key block: [key][query], as vec4 of 4 queries.
var<workgroup> probs: array<vec4<f32>, ${BLOCK_KEYS * qVecs}>;
// q chunk [channel][query] at 0 and k chunk [channel][key] at ${kAt} during the score product;
// v slice [key][channel] during the output product. All as vec4 along the last axis.
var<workgroup> stage: array<vec4<f32>, ${stageVecs}>;
var<workgroup> row_max: array<f32, ${ATTENTION_BLOCK_QUERIES}>;
var<workgroup> row_sum: array<f32, ${ATTENTION_BLOCK_QUERIES}>;
var<workgroup> row_rescale: array<f32, ${ATTENTION_BLOCK_QUERIES}>;

`,
    main: wgsl`
  let t = lid;
  let unit = p.first_unit + wid.y;
  let n = unit / p.heads;
  let h = unit % p.heads;
  // Global element of (n, first channel of head h, token 0), the same in all four tensors.
  let head_at = (n * p.channels + h * p.head_dim) * p.tokens;
  let q0 = wid.x * ${ATTENTION_BLOCK_QUERIES}u;
  // Score product: queries 4·sq … 4·sq + 3 against keys 4·sk … 4·sk + 3.
  let sq = t / ${kVecs}u;
  let sk = t % ${kVecs}u;
  // Output product: queries 8·oq … 8·oq + 7, channel vec4 columns oc + ${OUTPUT_COLUMNS}·m.
  let oq = t / ${OUTPUT_COLUMNS}u;
  let oc = t % ${OUTPUT_COLUMNS}u;

  if (t < ${ATTENTION_BLOCK_QUERIES}u) {
    row_max[t] = LOWEST;
    row_sum[t] = 0.0;
  }
${unrolled(8, (a) => unrolled(columns, (m) => `  var ${acc(a, m)} = vec4<f32>(0.0);`))}

  for (var k0 = 0u; k0 < p.tokens; k0 += ${BLOCK_KEYS}u) {
${unrolled(4, (a) => `    var s_${a} = vec4<f32>(0.0);`)}
    for (var c0 = 0u; c0 < p.head_dim; c0 += ${CHANNEL_CHUNK}u) {
      for (var e = t; e < ${CHANNEL_CHUNK * ATTENTION_BLOCK_QUERIES}u; e += ${THREADS}u) {
        let c = c0 + e / ${ATTENTION_BLOCK_QUERIES}u;
        let i = q0 + e % ${ATTENTION_BLOCK_QUERIES}u;
        var value = 0.0;
        if (c < p.head_dim && i < p.tokens) { value = q_src[head_at + c * p.tokens + i - p.q_origin]; }
        stage[e / 4u][e % 4u] = value;
      }
      for (var e = t; e < ${CHANNEL_CHUNK * BLOCK_KEYS}u; e += ${THREADS}u) {
        let c = c0 + e / ${BLOCK_KEYS}u;
        let j = k0 + e % ${BLOCK_KEYS}u;
        var value = 0.0;
        if (c < p.head_dim && j < p.tokens) { value = k_src[head_at + c * p.tokens + j - p.k_origin]; }
        stage[${kAt}u + e / 4u][e % 4u] = value;
      }
      workgroupBarrier();
      for (var c = 0u; c < min(${CHANNEL_CHUNK}u, p.head_dim - c0); c++) {
        let qv = stage[c * ${qVecs}u + sq];
        let kv = stage[${kAt}u + c * ${kVecs}u + sk];
${unrolled(4, (a) => `        s_${a} = fma(vec4<f32>(qv.${lanes[a]}), kv, s_${a});`)}
      }
      workgroupBarrier();
    }
${unrolled(4, (b) => `    probs[(4u * sk + ${b}u) * ${qVecs}u + sq] = vec4<f32>(s_0.${lanes[b]}, s_1.${lanes[b]}, s_2.${lanes[b]}, s_3.${lanes[b]}) * p.scale;`)}
    workgroupBarrier();

    // Keys past the end were scored against zeros: the loops below stop before them.
    let keys = min(${BLOCK_KEYS}u, p.tokens - k0);
    if (t < ${ATTENTION_BLOCK_QUERIES}u) {
      let qv = t / 4u;
      let lane = t % 4u;
      let previous = row_max[t];
      var top = previous;
      for (var j = 0u; j < keys; j++) {
        top = max(top, probs[j * ${qVecs}u + qv][lane]);
      }
      var sum = 0.0;
      for (var j = 0u; j < keys; j++) {
        let e = exp(probs[j * ${qVecs}u + qv][lane] - top);
        probs[j * ${qVecs}u + qv][lane] = e;
        sum += e;
      }
      let rescale = exp(previous - top);
      row_rescale[t] = rescale;
      row_sum[t] = row_sum[t] * rescale + sum;
      row_max[t] = top;
    }
    workgroupBarrier();

${unrolled(8, (a) => `    let rescale_${a} = row_rescale[8u * oq + ${a}u];\n${unrolled(columns, (m) => `    ${acc(a, m)} *= rescale_${a};`)}`)}
    for (var j0 = 0u; j0 < keys; j0 += ${vKeys}u) {
      for (var e = t; e < ${vKeys * vRow * 4}u; e += ${THREADS}u) {
        let j = e % ${vKeys}u;
        let c = e / ${vKeys}u;
        let key = k0 + j0 + j;
        var value = 0.0;
        if (c < p.head_dim && key < p.tokens) { value = v_src[head_at + c * p.tokens + key - p.v_origin]; }
        stage[j * ${vRow}u + c / 4u][c % 4u] = value;
      }
      workgroupBarrier();
      for (var j = 0u; j < min(${vKeys}u, keys - j0); j++) {
        let p_lo = probs[(j0 + j) * ${qVecs}u + 2u * oq];
        let p_hi = probs[(j0 + j) * ${qVecs}u + 2u * oq + 1u];
${unrolled(columns, (m) => `        let v_${m} = stage[j * ${vRow}u + oc + ${m * OUTPUT_COLUMNS}u];`)}
${unrolled(8, (a) => unrolled(columns, (m) => `        ${acc(a, m)} = fma(vec4<f32>(${a < 4 ? 'p_lo' : 'p_hi'}.${lanes[a % 4]}), v_${m}, ${acc(a, m)});`))}
      }
      workgroupBarrier();
    }
  }

  // The accumulators go out through a private array and one store site in loops with runtime
  // trip counts: on lavapipe every store site becomes a loop over SIMD lanes, and 8·4·columns
  // unrolled stores cost seconds of compile.
  var result: array<vec4<f32>, ${8 * columns}>;
${unrolled(8, (a) => `  let inv_sum_${a} = 1.0 / row_sum[8u * oq + ${a}u];\n${unrolled(columns, (m) => `  result[${a * columns + m}u] = ${acc(a, m)} * inv_sum_${a};`)}`)}
  let first_query = q0 + 8u * oq;
  for (var m = 0u; (oc + ${OUTPUT_COLUMNS}u * m) * 4u < p.head_dim; m++) {
    let first_channel = (oc + ${OUTPUT_COLUMNS}u * m) * 4u;
    for (var c = first_channel; c < min(first_channel + 4u, p.head_dim); c++) {
      for (var i = first_query; i < min(first_query + 8u, p.tokens); i++) {
        out[head_at + c * p.tokens + i - p.out_origin] = result[(i - first_query) * ${columns}u + m][c - first_channel];
      }
    }
  }`,
  });
});
