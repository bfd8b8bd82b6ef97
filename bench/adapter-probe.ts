// What the machine and the adapter can do right now, from fixed workloads that never change with
// the engine (issue #16):
// - `machineCheck`, run by `npm run bench` at its start and end: one core's scalar speed (a fixed
//   JavaScript loop) and the adapter's arithmetic and load throughput. On a shared VM the same
//   build ran twice as slow on one day as on the day before (bench/README.md); these figures say
//   which machine a run had, so runs of different days can be told apart.
// - Run directly (`node dist/bench/adapter-probe.js [--json out.json]`), the cost of one loaded
//   element by kind of load against one fused multiply-add: on llvmpipe a load whose address
//   differs per invocation is a loop over the lanes with a bounds check and a branch for each,
//   so a kernel's speed is set by how many elements each invocation loads per multiply-add.
import { writeFile, rename } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { GpuContext } from '../src/gpu/context.js';
import { createNodeGpuContext } from '../src/gpu/node.js';
import { median } from './measure.js';

/** One probe's result: what a second of both cores does. */
export interface ProbeResult {
  name: string;
  ms: number;
  /** Fused multiply-adds (× 2 FLOP) per second, in GFLOP/s, for the arithmetic probe. */
  gflops?: number;
  /** Loaded 32-bit elements per second (each invocation's own), in G elements/s, for load probes. */
  g_elements?: number;
  /** Nanoseconds of both cores per element per 8 invocations (one llvmpipe subgroup). */
  ns_per_element_per_8?: number;
}

export interface MachineCheck {
  /** A fixed scalar JavaScript loop on one core (ms, the fastest of 3: the least disturbed). */
  js_ms: number;
  /** The adapter's multiply-add throughput with nothing loaded. */
  adapter_fma_gflops: number;
  /** The adapter's storage-buffer loads at per-invocation addresses. */
  adapter_load_g_elements: number;
}

const WORKGROUPS = 2048;
const WORKGROUP_SIZE = 8;
const ITERATIONS = 1024;
/** The arithmetic-only kernel runs this many times the iterations (it is that much faster). */
const ARITHMETIC_REPEAT = 8;
const CHAINS = 8;
const ELEMENTS = 1 << 14;

interface LoadKind {
  /** The declaration at @group(0) @binding(0). */
  declaration: string;
  /** WGSL for element i (a u32 expression) of the source, as f32; `lane` is local_invocation_index. */
  load: (i: string) => string;
  /** Values one `load` yields (32-bit elements, or f16 halves when packed). */
  elements: number;
  resource: 'storage' | 'uniform' | 'texture';
  /** WGSL at the top of main (workgroup memory filled before the loop). */
  prologue?: string;
}

const VEC4_SUM = (v: string): string => `dot(${v}, vec4<f32>(1.0))`;

export const LOAD_KINDS: Record<string, LoadKind | null> = {
  'arithmetic only (no load)': null,
  'storage, per-invocation address': {
    declaration: 'var<storage, read> src: array<f32>;',
    load: (i) => `src[(${i} * 8u + lane) & ${ELEMENTS - 1}u]`,
    elements: 1,
    resource: 'storage',
  },
  'storage vec4, per-invocation address': {
    declaration: 'var<storage, read> src: array<vec4<f32>>;',
    load: (i) => VEC4_SUM(`src[(${i} * 8u + lane) & ${ELEMENTS / 4 - 1}u]`),
    elements: 4,
    resource: 'storage',
  },
  'storage vec4<u32> of 8 packed f16, per-invocation address': {
    declaration:
      'var<storage, read> src: array<vec4<u32>>;\n' +
      'fn packed_sum(v: vec4<u32>) -> f32 {\n' +
      '  let s = unpack2x16float(v.x) + unpack2x16float(v.y) + unpack2x16float(v.z) + unpack2x16float(v.w);\n' +
      '  return s.x + s.y;\n}',
    load: (i) => `packed_sum(src[(${i} * 8u + lane) & ${ELEMENTS / 4 - 1}u])`,
    elements: 8,
    resource: 'storage',
  },
  'storage, one address for the workgroup': {
    declaration: 'var<storage, read> src: array<f32>;',
    load: (i) => `src[(${i} * 8u) & ${ELEMENTS - 1}u]`,
    elements: 1,
    resource: 'storage',
  },
  'workgroup memory, per-invocation address': {
    declaration: `var<storage, read> src: array<f32>;\nvar<workgroup> shared_src: array<f32, ${ELEMENTS / 4}>;`,
    load: (i) => `shared_src[(${i} * 8u + lane) & ${ELEMENTS / 4 - 1}u]`,
    elements: 1,
    resource: 'storage',
    prologue: `  for (var j = lane; j < ${ELEMENTS / 4}u; j += ${WORKGROUP_SIZE}u) { shared_src[j] = src[j]; }\n  workgroupBarrier();`,
  },
  'uniform buffer vec4, per-invocation address': {
    declaration: `var<uniform> src: array<vec4<f32>, ${ELEMENTS / 4}>;`,
    load: (i) => VEC4_SUM(`src[(${i} * 8u + lane) & ${ELEMENTS / 4 - 1}u]`),
    elements: 4,
    resource: 'uniform',
  },
  'texture rgba32float, per-invocation texel': {
    declaration: 'var src: texture_2d<f32>;',
    load: (i) => VEC4_SUM(`textureLoad(src, vec2<u32>((${i} * 8u + lane) & 63u, ((${i} * 8u + lane) >> 6u) & 63u), 0)`),
    elements: 4,
    resource: 'texture',
  },
};

/**
 * A kernel of CHAINS independent multiply-add chains per invocation; with a load kind, each
 * multiply-add adds one freshly loaded value (so the loads are what it times).
 */
function probeWgsl(kind: LoadKind | null): string {
  const term = (j: number): string => (kind ? kind.load(`(k * ${CHAINS}u + ${j}u + wid.x)`) : 'step');
  const iterations = kind ? ITERATIONS : ITERATIONS * ARITHMETIC_REPEAT;
  return `@group(0) @binding(0) ${kind ? kind.declaration : 'var<storage, read> src: array<f32>;'}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WORKGROUP_SIZE})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
${kind?.prologue ?? ''}
${Array.from({ length: CHAINS }, (_, j) => `  var acc${j} = ${kind ? '0.0' : `src[${j}u]`};`).join('\n')}
  for (var k = 0u; k < ${iterations}u; k++) {
${kind ? '' : '    let step = f32(k);\n'}${Array.from({ length: CHAINS }, (_, j) => `    acc${j} = fma(acc${j}, 0.999, ${term(j)});`).join('\n')}
  }
  out[wid.x * ${WORKGROUP_SIZE}u + lane] = ${Array.from({ length: CHAINS }, (_, j) => `acc${j}`).join(' + ')};
}`;
}

interface ProbeResources {
  storage: GPUBuffer;
  uniform: GPUBuffer;
  texture: GPUTexture;
  out: GPUBuffer;
  destroy(): void;
}

function createResources(device: GPUDevice): ProbeResources {
  const data = Float32Array.from({ length: ELEMENTS }, (_, i) => ((i % 17) - 8) * 1e-3);
  const storage = device.createBuffer({ size: data.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const uniform = device.createBuffer({ size: data.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const texture = device.createTexture({
    size: [64, 64],
    format: 'rgba32float',
    usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
  });
  const out = device.createBuffer({ size: WORKGROUPS * WORKGROUP_SIZE * 4, usage: GPUBufferUsage.STORAGE });
  device.queue.writeBuffer(storage, 0, data);
  device.queue.writeBuffer(uniform, 0, data);
  device.queue.writeTexture({ texture }, data, { bytesPerRow: 64 * 16 }, [64, 64]);
  return {
    storage,
    uniform,
    texture,
    out,
    destroy() {
      for (const b of [storage, uniform, out]) b.destroy();
      texture.destroy();
    },
  };
}

async function runProbe(
  ctx: GpuContext,
  resources: ProbeResources,
  name: string,
  kind: LoadKind | null,
  repeats: number,
): Promise<ProbeResult> {
  const device = ctx.device;
  const pipeline = device.createComputePipeline({
    label: `adapter probe: ${name}`,
    layout: 'auto',
    compute: { module: device.createShaderModule({ code: probeWgsl(kind) }), entryPoint: 'main' },
  });
  const source =
    kind?.resource === 'texture'
      ? resources.texture.createView()
      : { buffer: kind?.resource === 'uniform' ? resources.uniform : resources.storage };
  const group = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: source },
      { binding: 1, resource: { buffer: resources.out } },
    ],
  });
  const once = async (): Promise<number> => {
    const started = performance.now();
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(WORKGROUPS);
    pass.end();
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
    return performance.now() - started;
  };
  await once();
  const times: number[] = [];
  for (let r = 0; r < repeats; r++) times.push(await once());
  const ms = median(times);
  const invocationSteps = WORKGROUPS * WORKGROUP_SIZE * ITERATIONS * CHAINS;
  if (!kind) return { name, ms, gflops: (2 * invocationSteps * ARITHMETIC_REPEAT) / ms / 1e6 };
  const elements = invocationSteps * kind.elements;
  return { name, ms, g_elements: elements / ms / 1e6, ns_per_element_per_8: (ms * 1e6) / (elements / 8) };
}

/** Every load kind and the arithmetic-only kernel, in LOAD_KINDS' order. */
export async function probeLoads(ctx: GpuContext, repeats = 5): Promise<ProbeResult[]> {
  const resources = createResources(ctx.device);
  try {
    const results: ProbeResult[] = [];
    for (const [name, kind] of Object.entries(LOAD_KINDS)) results.push(await runProbe(ctx, resources, name, kind, repeats));
    return results;
  } finally {
    resources.destroy();
  }
}

/** A fixed scalar loop: one core's speed, whatever the engine does. */
function jsLoopMs(): number {
  const table = Float64Array.from({ length: 4096 }, (_, i) => i * 1e-3);
  const started = performance.now();
  let sum = 0;
  for (let r = 0; r < 20000; r++) for (let i = 0; i < 4096; i++) sum += table[i] * table[(i * 7) & 4095];
  const ms = performance.now() - started;
  // The sum is checked so that the loop cannot be dropped as dead code.
  if (!Number.isFinite(sum)) throw new Error('machine check: the calibration loop overflowed');
  return ms;
}

export async function machineCheck(ctx: GpuContext): Promise<MachineCheck> {
  jsLoopMs();
  const js = Math.min(jsLoopMs(), jsLoopMs(), jsLoopMs());
  const resources = createResources(ctx.device);
  try {
    const fma = await runProbe(ctx, resources, 'arithmetic', null, 3);
    const loads = await runProbe(ctx, resources, 'storage loads', LOAD_KINDS['storage, per-invocation address'], 3);
    return { js_ms: js, adapter_fma_gflops: fma.gflops!, adapter_load_g_elements: loads.g_elements! };
  } finally {
    resources.destroy();
  }
}

export function machineLine(check: MachineCheck): string {
  return (
    `JS loop ${check.js_ms.toFixed(1)} ms (one core), adapter ${check.adapter_fma_gflops.toFixed(1)} GFLOP/s of multiply-adds, ` +
    `${check.adapter_load_g_elements.toFixed(2)} G elements/s of storage loads`
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { json: { type: 'string' }, repeats: { type: 'string', default: '5' } } });
  const ctx = await createNodeGpuContext();
  console.log(
    `adapter: ${ctx.adapter.description || ctx.adapter.device}; load average ${loadavg()
      .map((v) => v.toFixed(2))
      .join(' ')}`,
  );
  console.log(`machine check: ${machineLine(await machineCheck(ctx))}`);
  const results = await probeLoads(ctx, Number(values.repeats));
  const fma = results[0];
  const fmaNsPer8 = (fma.ms * 1e6) / ((WORKGROUPS * WORKGROUP_SIZE * ITERATIONS * CHAINS * ARITHMETIC_REPEAT) / 8);
  console.log(`\n| kind | ms | G elements/s | ns per element per 8 invocations | × a multiply-add |\n|---|---:|---:|---:|---:|`);
  for (const r of results) {
    const per8 = r.ns_per_element_per_8 ?? fmaNsPer8;
    console.log(
      `| ${r.name} | ${r.ms.toFixed(1)} | ${r.g_elements?.toFixed(2) ?? `(${r.gflops!.toFixed(1)} GFLOP/s)`} | ${per8.toFixed(2)} | ${(per8 / fmaNsPer8).toFixed(1)} |`,
    );
  }
  if (values.json) {
    const temporary = `${values.json}.tmp-${process.pid}`;
    await writeFile(temporary, JSON.stringify({ adapter: { ...ctx.adapter }, loadavg: loadavg(), results }, null, 2));
    await rename(temporary, values.json);
  }
  ctx.dispose();
  process.exit(0);
}
