import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';

/** Queries per workgroup. */
export const ATTENTION_BLOCK_QUERIES = 32;
/** Keys per online-softmax step. */
const BLOCK_KEYS = 128;
/** Channels of q and k staged per step of the score product. */
const CHANNEL_CHUNK = 16;
const THREADS = 256;
/** Invocations along the channels in the output product; each owns vec4 columns oc + 64·m. */
const OUTPUT_COLUMNS = 64;

/** Largest head width the kernel supports: 16 vec4 output accumulators per invocation. */
export const ATTENTION_MAX_HEAD_DIM = 1024;

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
 * 4·m channels (vec4 columns oc + 64·m, m < columnsPerInvocation) in registers, rescaled by the
 * change of the running max. The register blocks make every workgroup-memory load feed 8–16
 * multiply-adds.
 *
 * q, k, v and out are bound separately and each binding carries its origin (the global element
 * it starts at), so chunked dispatches index with global positions.
 */
export function attentionShader(headDim: number): string {
  // vec4 output columns per invocation (a power of two), and keys of v staged per step so the
  // staged slice of v fits the same 8 KiB whatever the head width.
  const columns = 2 ** Math.ceil(Math.log2(Math.max(1, Math.ceil(headDim / (4 * OUTPUT_COLUMNS)))));
  const vKeys = 8 / columns;
  const vRow = OUTPUT_COLUMNS * columns;
  const qVecs = ATTENTION_BLOCK_QUERIES / 4;
  const kVecs = BLOCK_KEYS / 4;
  const kAt = CHANNEL_CHUNK * qVecs;
  const stageVecs = Math.max(kAt + CHANNEL_CHUNK * kVecs, vKeys * vRow);
  const acc = (a: number, m: number): string => `acc_${a}_${m}`;
  const lanes = ['x', 'y', 'z', 'w'];
  return wgsl`
struct P {
  tokens: u32,
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
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const HEAD_DIM = ${headDim}u;
const LOWEST = -3.0e38;

// Scores, then probabilities, of the key block: [key][query], as vec4 of 4 queries.
var<workgroup> probs: array<vec4<f32>, ${BLOCK_KEYS * qVecs}>;
// q chunk [channel][query] at 0 and k chunk [channel][key] at ${kAt} during the score product;
// v slice [key][channel] during the output product. All as vec4 along the last axis.
var<workgroup> stage: array<vec4<f32>, ${stageVecs}>;
var<workgroup> row_max: array<f32, ${ATTENTION_BLOCK_QUERIES}>;
var<workgroup> row_sum: array<f32, ${ATTENTION_BLOCK_QUERIES}>;
var<workgroup> row_rescale: array<f32, ${ATTENTION_BLOCK_QUERIES}>;

fn load(src_is: u32, at: u32, valid: bool) -> f32 {
  if (!valid) { return 0.0; }
  if (src_is == 0u) { return q_src[at - p.q_origin]; }
  if (src_is == 1u) { return k_src[at - p.k_origin]; }
  return v_src[at - p.v_origin];
}

@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let unit = p.first_unit + wid.y;
  let n = unit / p.heads;
  let h = unit % p.heads;
  // Global element of (n, first channel of head h, token 0), the same in all four tensors.
  let head_at = (n * p.channels + h * HEAD_DIM) * p.tokens;
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
    for (var c0 = 0u; c0 < HEAD_DIM; c0 += ${CHANNEL_CHUNK}u) {
      for (var e = t; e < ${CHANNEL_CHUNK * ATTENTION_BLOCK_QUERIES}u; e += ${THREADS}u) {
        let c = c0 + e / ${ATTENTION_BLOCK_QUERIES}u;
        let i = e % ${ATTENTION_BLOCK_QUERIES}u;
        stage[e / 4u][i % 4u] = load(0u, head_at + c * p.tokens + q0 + i, c < HEAD_DIM && q0 + i < p.tokens);
      }
      for (var e = t; e < ${CHANNEL_CHUNK * BLOCK_KEYS}u; e += ${THREADS}u) {
        let c = c0 + e / ${BLOCK_KEYS}u;
        let j = e % ${BLOCK_KEYS}u;
        stage[${kAt}u + e / 4u][j % 4u] = load(1u, head_at + c * p.tokens + k0 + j, c < HEAD_DIM && k0 + j < p.tokens);
      }
      workgroupBarrier();
      for (var c = 0u; c < ${CHANNEL_CHUNK}u; c++) {
        let qv = stage[c * ${qVecs}u + sq];
        let kv = stage[${kAt}u + c * ${kVecs}u + sk];
${unrolled(4, (a) => `        s_${a} = fma(vec4<f32>(qv.${lanes[a]}), kv, s_${a});`)}
      }
      workgroupBarrier();
    }
${unrolled(
  4,
  (b) => `    probs[(4u * sk + ${b}u) * ${qVecs}u + sq] = select(vec4<f32>(LOWEST), vec4<f32>(s_0.${lanes[b]}, s_1.${lanes[b]}, s_2.${lanes[b]}, s_3.${lanes[b]}) * p.scale, k0 + 4u * sk + ${b}u < p.tokens);`,
)}
    workgroupBarrier();

    if (t < ${ATTENTION_BLOCK_QUERIES}u) {
      let qv = t / 4u;
      let lane = t % 4u;
      let previous = row_max[t];
      var top = previous;
      for (var j = 0u; j < ${BLOCK_KEYS}u; j++) {
        top = max(top, probs[j * ${qVecs}u + qv][lane]);
      }
      var sum = 0.0;
      for (var j = 0u; j < ${BLOCK_KEYS}u; j++) {
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

${unrolled(8, (a) => `    let rescale_${a} = row_rescale[8u * oq + ${a}u];\n` + unrolled(columns, (m) => `    ${acc(a, m)} *= rescale_${a};`))}
    for (var j0 = 0u; j0 < ${BLOCK_KEYS}u; j0 += ${vKeys}u) {
      for (var e = t; e < ${vKeys * vRow * 4}u; e += ${THREADS}u) {
        let j = e % ${vKeys}u;
        let c = e / ${vKeys}u;
        let key = k0 + j0 + j;
        stage[j * ${vRow}u + c / 4u][c % 4u] = load(2u, head_at + c * p.tokens + key, c < HEAD_DIM && key < p.tokens);
      }
      workgroupBarrier();
      for (var j = 0u; j < ${vKeys}u; j++) {
        let p_lo = probs[(j0 + j) * ${qVecs}u + 2u * oq];
        let p_hi = probs[(j0 + j) * ${qVecs}u + 2u * oq + 1u];
${unrolled(columns, (m) => `        let v_${m} = stage[j * ${vRow}u + oc + ${m * OUTPUT_COLUMNS}u];`)}
${unrolled(8, (a) => unrolled(columns, (m) => `        ${acc(a, m)} = fma(vec4<f32>(${a < 4 ? 'p_lo' : 'p_hi'}.${lanes[a % 4]}), v_${m}, ${acc(a, m)});`))}
      }
      workgroupBarrier();
    }
  }

${unrolled(8, (a) => {
  const lines = [`  if (q0 + 8u * oq + ${a}u < p.tokens) {`, `    let inv_sum = 1.0 / row_sum[8u * oq + ${a}u];`];
  for (let m = 0; m < columns; m++) {
    lines.push(`    let c_${m} = (oc + ${m * OUTPUT_COLUMNS}u) * 4u;`);
    lines.push(`    for (var l = 0u; l < 4u; l++) {`);
    lines.push(`      if (c_${m} + l < HEAD_DIM) { out[head_at + (c_${m} + l) * p.tokens + q0 + 8u * oq + ${a}u - p.out_origin] = ${acc(a, m)}[l] * inv_sum; }`);
    lines.push(`    }`);
  }
  lines.push('  }');
  return lines.join('\n');
})}
}`;
}
