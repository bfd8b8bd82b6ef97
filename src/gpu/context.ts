import { BufferPool, type PoolStats } from './buffer-pool.js';
import { DeviceLostError, GpuLimitError, GpuValidationError, NoAdapterError } from './errors.js';

/** Which optional WebGPU features the device was created with. */
export interface GpuFeatures {
  shaderF16: boolean;
  timestampQuery: boolean;
  subgroups: boolean;
}

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
}

/** The limits deltadiff cares about, as granted by the device (or lowered for tests). */
export interface GpuLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupSizeY: number;
  maxComputeWorkgroupsPerDimension: number;
  maxStorageBuffersPerShaderStage: number;
  minStorageBufferOffsetAlignment: number;
}

export interface GpuContextOptions {
  /** navigator.gpu, or the GPU object of the `webgpu` package in Node. */
  gpu?: GPU;
  /** Use this adapter instead of requesting one (null simulates a machine without one). */
  adapter?: GPUAdapter | null;
  powerPreference?: GPUPowerPreference;
  /** Pretend the binding limit is this small (bytes): tests the ops' chunking paths. */
  maxStorageBufferBindingSize?: number;
  /** Ask for shader-f16 / timestamp-query / subgroups when present (default true). */
  useOptionalFeatures?: boolean;
}

/** One storage binding: a whole buffer or a byte range of it. */
export interface BufferRange {
  buffer: GPUBuffer;
  offset?: number;
  size?: number;
}

/** A compute dispatch as data: what the runtime records. */
export interface KernelCall {
  /** Op name, used in labels and error messages. */
  op: string;
  code: string;
  entryPoint?: string;
  /** Uniform data bound at @binding(0) when present; storage bindings follow it. */
  params?: ArrayBuffer;
  bindings: BufferRange[];
  workgroups: readonly [number, number?, number?];
}

const LIMIT_NAMES: (keyof GpuLimits)[] = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'minStorageBufferOffsetAlignment',
];

const MAX_CACHED_PARAM_BUFFERS = 8192;
/**
 * Recorded commands per submission. Dawn on lavapipe crashes past ~30,000 dispatches in one
 * encoder; submitting in batches costs nothing measurable and is not a sync.
 */
const MAX_COMMANDS_PER_SUBMIT = 2048;

/**
 * The device plus everything that makes it usable as a tensor engine: a pipeline cache, a
 * buffer pool, one open command encoder that records whole forwards, and error attribution.
 * GPU errors are collected as they arrive and thrown, with the op's name, at the next sync.
 */
export class GpuContext {
  readonly pool: BufferPool;
  readonly limits: GpuLimits;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly paramBuffers = new Map<string, GPUBuffer>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private recordedOps: string[] = [];
  private readonly pendingScopes: Promise<void>[] = [];
  private readonly errors: Error[] = [];
  private lost: DeviceLostError | null = null;
  private disposed = false;
  /** Dispatches recorded since creation (for tests and benchmarks). */
  dispatchCount = 0;
  /**
   * The GPU object the adapter came from. Held so it lives as long as the device: Dawn's Node
   * binding tears its instance down (and stops resolving promises) when that object is collected.
   */
  gpu: GPU | undefined;

  constructor(
    readonly device: GPUDevice,
    readonly adapter: AdapterDescription,
    readonly features: GpuFeatures,
    limits: GpuLimits,
  ) {
    this.limits = limits;
    this.pool = new BufferPool(device, limits.maxBufferSize, (label, create) => this.scoped(label, 'out-of-memory', create));
    device.lost.then((info) => {
      if (!this.disposed) this.lost = new DeviceLostError(info.reason, info.message);
    });
    device.addEventListener('uncapturederror', (event) => {
      const e = (event as GPUUncapturedErrorEvent).error;
      this.errors.push(new GpuValidationError(e.message, 'uncaptured', 'validation'));
    });
  }

  /** Runs `body` inside an error scope; an error it raises is recorded with the op's name. */
  scoped<T>(op: string, filter: GPUErrorFilter, body: () => T): T {
    this.device.pushErrorScope(filter);
    try {
      return body();
    } finally {
      this.pendingScopes.push(
        this.device.popErrorScope().then((error) => {
          if (error) this.errors.push(new GpuValidationError(error.message, op, filter));
        }),
      );
    }
  }

  /** A compiled pipeline for this source and entry point, built once and cached. */
  pipeline(op: string, code: string, entryPoint = 'main', constants?: Record<string, number>): GPUComputePipeline {
    const key = `${entryPoint}\u0000${constants ? JSON.stringify(constants) : ''}\u0000${code}`;
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      pipeline = this.scoped(op, 'validation', () => {
        const module = this.device.createShaderModule({ code, label: op });
        return this.device.createComputePipeline({
          layout: 'auto',
          label: op,
          compute: { module, entryPoint, constants },
        });
      });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  get pipelineCount(): number {
    return this.pipelines.size;
  }

  /** Records one dispatch into the open compute pass. No GPU→CPU sync. */
  dispatch(call: KernelCall): void {
    this.assertUsable(call.op);
    const [x, y = 1, z = 1] = call.workgroups;
    const maxGroups = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxGroups || y > maxGroups || z > maxGroups) {
      throw new GpuLimitError(`dispatch of ${x}×${y}×${z} workgroups exceeds ${maxGroups} per dimension`, call.op);
    }
    if (x === 0 || y === 0 || z === 0) return;
    for (const b of call.bindings) {
      const size = b.size ?? b.buffer.size - (b.offset ?? 0);
      if (size > this.limits.maxStorageBufferBindingSize) {
        throw new GpuLimitError(
          `a binding of ${size} bytes exceeds maxStorageBufferBindingSize (${this.limits.maxStorageBufferBindingSize}); the op must chunk it`,
          call.op,
        );
      }
    }
    const pipeline = this.pipeline(call.op, call.code, call.entryPoint);
    const entries: GPUBindGroupEntry[] = [];
    if (call.params) entries.push({ binding: 0, resource: { buffer: this.paramBuffer(call.params) } });
    const first = call.params ? 1 : 0;
    call.bindings.forEach((b, i) =>
      entries.push({ binding: first + i, resource: { buffer: b.buffer, offset: b.offset ?? 0, size: b.size } }),
    );
    const bindGroup = this.scoped(call.op, 'validation', () =>
      this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries, label: call.op }),
    );
    const pass = this.computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    this.recordedOps.push(call.op);
    this.dispatchCount++;
    if (this.recordedOps.length >= MAX_COMMANDS_PER_SUBMIT) this.flush();
  }

  /** Records a buffer-to-buffer copy in order with the dispatches. */
  copyBuffer(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void {
    this.assertUsable('copy');
    this.endPass();
    this.commandEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, size);
    this.recordedOps.push('copy');
  }

  /**
   * Writes host data into a buffer. Recorded work is submitted first: queue writes execute
   * before any command buffer submitted after them, so they must not overtake earlier ops.
   */
  writeBuffer(buffer: GPUBuffer, offset: number, data: ArrayBufferView): void {
    this.assertUsable('upload');
    if (this.recordedOps.length) this.flush();
    this.device.queue.writeBuffer(buffer, offset, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Submits everything recorded so far (does not wait for the GPU). */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    const encoder = this.encoder;
    const ops = this.recordedOps;
    this.encoder = null;
    this.recordedOps = [];
    const summary = summariseOps(ops);
    this.scoped(`submit [${summary}]`, 'validation', () => this.device.queue.submit([encoder.finish()]));
    if (this.paramBuffers.size > MAX_CACHED_PARAM_BUFFERS) {
      for (const b of this.paramBuffers.values()) b.destroy();
      this.paramBuffers.clear();
    }
  }

  /** Waits for the GPU to finish all submitted work; throws the first error recorded. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.throwPendingErrors();
  }

  /** Copies a byte range of a buffer back to the host (flushes and waits). */
  async readBuffer(buffer: GPUBuffer, offset: number, size: number): Promise<ArrayBuffer> {
    this.assertUsable('readback');
    const alignedSize = Math.ceil(size / 4) * 4;
    const staging = this.device.createBuffer({
      size: alignedSize,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      label: 'readback',
    });
    try {
      this.copyBuffer(buffer, offset, staging, 0, alignedSize);
      this.flush();
      await staging.mapAsync(GPUMapMode.READ);
      const result = staging.getMappedRange().slice(0, size);
      staging.unmap();
      await this.throwPendingErrors();
      return result;
    } catch (e) {
      await this.throwPendingErrors();
      if (this.lost) throw this.lost;
      throw e;
    } finally {
      staging.destroy();
    }
  }

  poolStats(): PoolStats {
    return this.pool.snapshot();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.flush();
    this.pool.trim();
    for (const b of this.paramBuffers.values()) b.destroy();
    this.paramBuffers.clear();
    this.pipelines.clear();
    this.device.destroy();
  }

  private async throwPendingErrors(): Promise<void> {
    const scopes = this.pendingScopes.splice(0);
    await Promise.all(scopes);
    if (this.lost) throw this.lost;
    const error = this.errors.shift();
    if (error) {
      this.errors.length = 0;
      throw error;
    }
  }

  private assertUsable(op: string): void {
    if (this.lost) throw this.lost;
    if (this.disposed) throw new GpuLimitError('the GPU context has been disposed', op);
  }

  private commandEncoder(): GPUCommandEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder({ label: 'deltadiff' });
    return this.encoder;
  }

  private computePass(): GPUComputePassEncoder {
    if (!this.pass) this.pass = this.commandEncoder().beginComputePass();
    return this.pass;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  /**
   * Uniform buffers are immutable and cached by content: a layer's parameters are the same at
   * every sampler step, so steady-state forwards upload nothing.
   */
  private paramBuffer(params: ArrayBuffer): GPUBuffer {
    const bytes = new Uint8Array(params);
    const key = String.fromCharCode(...new Uint16Array(params, 0, bytes.byteLength >> 1));
    let buffer = this.paramBuffers.get(key);
    if (!buffer) {
      const size = Math.max(16, Math.ceil(bytes.byteLength / 16) * 16);
      buffer = this.device.createBuffer({ size, usage: GPUBufferUsage.UNIFORM, mappedAtCreation: true, label: 'params' });
      new Uint8Array(buffer.getMappedRange()).set(bytes);
      buffer.unmap();
      this.paramBuffers.set(key, buffer);
    }
    return buffer;
  }
}

function summariseOps(ops: string[]): string {
  const unique = [...new Set(ops)];
  return unique.length > 12 ? `${unique.slice(0, 12).join(', ')}, … (${ops.length} commands)` : unique.join(', ');
}

/**
 * Creates a context on the best adapter `gpu` offers, with the adapter's real limits and the
 * optional features deltadiff can use.
 */
export async function createGpuContext(options: GpuContextOptions = {}): Promise<GpuContext> {
  const gpu = options.gpu ?? (globalThis.navigator as Navigator | undefined)?.gpu;
  let adapter: GPUAdapter | null;
  if (options.adapter !== undefined) adapter = options.adapter;
  else if (!gpu) throw new NoAdapterError('this JavaScript runtime has no WebGPU (navigator.gpu is missing)');
  else adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) throw new NoAdapterError('requestAdapter() returned null');

  const wanted: [GPUFeatureName, keyof GpuFeatures][] = [
    ['shader-f16', 'shaderF16'],
    ['timestamp-query', 'timestampQuery'],
    ['subgroups' as GPUFeatureName, 'subgroups'],
  ];
  const features: GpuFeatures = { shaderF16: false, timestampQuery: false, subgroups: false };
  const requiredFeatures: GPUFeatureName[] = [];
  if (options.useOptionalFeatures !== false) {
    for (const [name, key] of wanted) {
      if (adapter.features.has(name)) {
        requiredFeatures.push(name);
        features[key] = true;
      }
    }
  }
  const requiredLimits: Record<string, number> = {};
  for (const name of LIMIT_NAMES) {
    const value = (adapter.limits as unknown as Record<string, number>)[name];
    if (typeof value === 'number' && name !== 'minStorageBufferOffsetAlignment') requiredLimits[name] = value;
  }
  // The kernels assume WebGPU's default limits; a smaller (compatibility-mode) adapter cannot run them.
  const minimums: [keyof GpuLimits, number][] = [
    ['maxComputeInvocationsPerWorkgroup', 256],
    ['maxComputeWorkgroupStorageSize', 16384],
    ['maxStorageBuffersPerShaderStage', 8],
  ];
  for (const [name, minimum] of minimums) {
    const value = (adapter.limits as unknown as Record<string, number>)[name];
    if (value < minimum) throw new GpuLimitError(`the adapter's ${name} is ${value}; deltadiff needs at least ${minimum}`);
  }
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits, label: 'deltadiff' });
  const limits = {} as GpuLimits;
  for (const name of LIMIT_NAMES) limits[name] = (device.limits as unknown as Record<string, number>)[name];
  if (options.maxStorageBufferBindingSize !== undefined) {
    limits.maxStorageBufferBindingSize = Math.min(limits.maxStorageBufferBindingSize, options.maxStorageBufferBindingSize);
  }
  const info = adapter.info;
  const description: AdapterDescription = {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
    isFallbackAdapter: (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ?? false,
  };
  const context = new GpuContext(device, description, features, limits);
  context.gpu = gpu;
  return context;
}
