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
  /** The kernel's @workgroup_size, checked against the device's limits when it is compiled. */
  workgroupSize?: readonly [number, number, number];
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

/**
 * Bind groups (with their uniform buffers) kept for reuse. Every bind group is a descriptor set
 * that lavapipe maps into the address space, and WebGPU frees one only when garbage collection
 * finds it, so steady-state work must create none; the cap bounds what varied work leaves.
 */
const MAX_CACHED_BIND_GROUPS = 8192;
/** Uniform contents kept per site before the least recently used one is rewritten in place. */
const SLOTS_PER_SITE = 4;
/**
 * Recorded commands per submission. Dawn on lavapipe crashes past ~30,000 dispatches in one
 * encoder; submitting in batches costs nothing measurable and is not a sync.
 */
const MAX_COMMANDS_PER_SUBMIT = 2048;
/**
 * Batches of work throttle() lets run ahead of the GPU. Dawn frees what a submission holds
 * (command buffers, upload staging) only once it has finished and Dawn gets a turn of the event
 * loop, so a long synchronous recording grows memory with every step; two batches keep the GPU
 * busy while the next one is recorded.
 */
const MAX_QUEUED_BATCHES = 2;

/**
 * The device plus everything that makes it usable as a tensor engine: a pipeline cache, a
 * buffer pool, one open command encoder that records whole forwards, and error attribution.
 * GPU errors are collected as they arrive and thrown, with the op's name, at the next sync.
 */
export class GpuContext {
  readonly pool: BufferPool;
  readonly limits: GpuLimits;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  /** Bind groups by dispatch site, least recently used first. */
  private readonly sites = new Map<string, BindingSlot[]>();
  private siteSlots = 0;
  /** Numbers naming pipelines and buffers in site keys. */
  private readonly objectIds = new WeakMap<object, number>();
  private nextObjectId = 1;
  /** Counts flushes: a slot recorded in the current one is still waiting to be submitted. */
  private submission = 0;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private recordedOps: string[] = [];
  private readonly pendingScopes: Promise<void>[] = [];
  /** Completion of the batches submitted by throttle(), oldest first. */
  private readonly queuedBatches: Promise<void>[] = [];
  private readonly errors: Error[] = [];
  private lost: DeviceLostError | null = null;
  private disposed = false;
  /** Dispatches recorded since creation (for tests and benchmarks). */
  dispatchCount = 0;
  /** Queue submissions, bind groups created and uniform blocks rewritten since creation (for benchmarks). */
  readonly counters = { submits: 0, bindGroupsCreated: 0, uniformWrites: 0 };
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
    this.pool = new BufferPool(
      device,
      limits.maxBufferSize,
      (label, create) => this.scoped(label, 'out-of-memory', create),
      () => this.forgetBindings(),
    );
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
  pipeline(
    op: string,
    code: string,
    entryPoint = 'main',
    constants?: Record<string, number>,
    workgroupSize?: readonly [number, number, number],
  ): GPUComputePipeline {
    // The common case is keyed by the source itself: a kernel declared once passes the same
    // string every time, whose hash V8 keeps, while a composed key would be rebuilt and hashed
    // (kilobytes of WGSL) on every dispatch. WGSL holds no NUL, so the two forms cannot collide.
    const key =
      entryPoint === 'main' && !constants ? code : `${entryPoint}\u0000${constants ? JSON.stringify(constants) : ''}\u0000${code}`;
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      if (workgroupSize) this.assertWorkgroupFits(op, workgroupSize);
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

  /** Throws, naming the limit, when a workgroup of this size cannot run on the device. */
  private assertWorkgroupFits(op: string, [x, y, z]: readonly [number, number, number]): void {
    const { maxComputeWorkgroupSizeX, maxComputeWorkgroupSizeY, maxComputeInvocationsPerWorkgroup } = this.limits;
    const problem =
      x > maxComputeWorkgroupSizeX
        ? `x exceeds maxComputeWorkgroupSizeX (${maxComputeWorkgroupSizeX})`
        : y > maxComputeWorkgroupSizeY
          ? `y exceeds maxComputeWorkgroupSizeY (${maxComputeWorkgroupSizeY})`
          : x * y * z > maxComputeInvocationsPerWorkgroup
            ? `${x * y * z} invocations exceed maxComputeInvocationsPerWorkgroup (${maxComputeInvocationsPerWorkgroup})`
            : '';
    if (problem) throw new GpuLimitError(`workgroup size ${x}×${y}×${z}: ${problem}`, op);
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
    const pipeline = this.pipeline(call.op, call.code, call.entryPoint, undefined, call.workgroupSize);
    const bindGroup = this.bindGroup(call, pipeline);
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
    this.submission++;
    this.counters.submits++;
  }

  /**
   * Submits what is recorded and waits until at most MAX_QUEUED_BATCHES batches submitted this
   * way are unfinished: back-pressure for long recordings (thousands of sampler steps), so the
   * work queued ahead of the GPU, and the memory behind it, stays bounded. Not a readback: the
   * GPU always has the latest batch to run while the host records the next one.
   */
  async throttle(): Promise<void> {
    this.assertUsable('throttle');
    this.flush();
    // Settles on device loss too: the loss is reported below, and by the next sync.
    this.queuedBatches.push(this.device.queue.onSubmittedWorkDone().catch(() => {}));
    while (this.queuedBatches.length > MAX_QUEUED_BATCHES) await this.queuedBatches.shift();
    if (this.lost) throw this.lost;
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

  /** Cached dispatch sites and their bind groups (each with its own uniform buffer when it has params). */
  get bindingStats(): { sites: number; bindGroups: number } {
    return { sites: this.sites.size, bindGroups: this.siteSlots };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.flush();
    this.pool.trim(); // forgets the cached bind groups too
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
   * The bind group for a dispatch, reused whenever the same pipeline binds the same buffer ranges
   * again: tensors come from the pool in a deterministic order, so every sampler step after the
   * first creates no bind group and no uniform buffer. A site keeps up to SLOTS_PER_SITE uniform
   * contents (one per distinct params block); a new one beyond that is written over the least
   * recently used slot's buffer, so values that change every step (a timestep's coefficients)
   * reuse one buffer and one bind group instead of making new ones.
   */
  private bindGroup(call: KernelCall, pipeline: GPUComputePipeline): GPUBindGroup {
    let siteKey = String(this.objectId(pipeline));
    for (const b of call.bindings) siteKey += `,${this.objectId(b.buffer)}:${b.offset ?? 0}:${b.size ?? ''}`;
    const params = call.params ? new Uint32Array(call.params) : undefined;
    let slots = this.sites.get(siteKey);
    if (slots)
      this.sites.delete(siteKey); // re-inserted below as the most recently used
    else slots = [];
    this.sites.set(siteKey, slots);
    let index = slots.findIndex((slot) => sameWords(slot.params, params));
    if (index < 0 && slots.length >= SLOTS_PER_SITE) {
      index = 0;
      const slot = slots[0];
      // Recorded-but-unsubmitted dispatches must still read the old contents.
      if (slot.recordedIn === this.submission) this.flush();
      this.device.queue.writeBuffer(slot.uniform!, 0, call.params!);
      this.counters.uniformWrites++;
      slot.params = params!.slice();
    }
    let slot: BindingSlot;
    if (index < 0) {
      slot = this.createSlot(call, pipeline, params?.slice());
      this.counters.bindGroupsCreated++;
      this.siteSlots++;
      this.evictSites(siteKey);
    } else {
      slot = slots.splice(index, 1)[0];
    }
    slots.push(slot);
    slot.recordedIn = this.submission;
    return slot.bindGroup;
  }

  private createSlot(call: KernelCall, pipeline: GPUComputePipeline, params: Uint32Array | undefined): BindingSlot {
    const entries: GPUBindGroupEntry[] = [];
    let uniform: GPUBuffer | undefined;
    if (call.params) {
      const bytes = new Uint8Array(call.params);
      const size = Math.max(16, Math.ceil(bytes.byteLength / 16) * 16);
      uniform = this.device.createBuffer({
        size,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
        mappedAtCreation: true,
        label: 'params',
      });
      new Uint8Array(uniform.getMappedRange()).set(bytes);
      uniform.unmap();
      entries.push({ binding: 0, resource: { buffer: uniform } });
    }
    const first = call.params ? 1 : 0;
    call.bindings.forEach((b, i) =>
      entries.push({ binding: first + i, resource: { buffer: b.buffer, offset: b.offset ?? 0, size: b.size } }),
    );
    const bindGroup = this.scoped(call.op, 'validation', () =>
      this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries, label: call.op }),
    );
    return { bindGroup, uniform, params, recordedIn: this.submission };
  }

  /**
   * Drops the least recently used sites beyond the cap (never `keep`, the one being dispatched).
   * Their uniform buffers can be destroyed at once: the cap holds more sites than one submission
   * can record (MAX_CACHED_BIND_GROUPS / SLOTS_PER_SITE ≥ MAX_COMMANDS_PER_SUBMIT), so the least
   * recently used one was submitted already, and WebGPU frees a buffer only after submitted work.
   */
  private evictSites(keep: string): void {
    for (const [key, slots] of this.sites) {
      if (this.siteSlots <= MAX_CACHED_BIND_GROUPS) return;
      if (key === keep) continue;
      for (const slot of slots) slot.uniform?.destroy();
      this.siteSlots -= slots.length;
      this.sites.delete(key);
    }
  }

  /** Forgets every cached bind group, e.g. before the pool destroys buffers they bind. */
  private forgetBindings(): void {
    this.flush();
    for (const slots of this.sites.values()) for (const slot of slots) slot.uniform?.destroy();
    this.sites.clear();
    this.siteSlots = 0;
  }

  private objectId(object: object): number {
    let id = this.objectIds.get(object);
    if (id === undefined) this.objectIds.set(object, (id = this.nextObjectId++));
    return id;
  }
}

/** One bind group of a dispatch site, with the uniform buffer it binds and that buffer's contents. */
interface BindingSlot {
  bindGroup: GPUBindGroup;
  uniform: GPUBuffer | undefined;
  /** A copy of the uniform block's contents, as words. */
  params: Uint32Array | undefined;
  /** The value of GpuContext.submission when it was last recorded. */
  recordedIn: number;
}

/** Whether two uniform blocks hold the same words (compared in place: no key string per dispatch). */
function sameWords(a: Uint32Array | undefined, b: Uint32Array | undefined): boolean {
  if (!a || !b) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
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
