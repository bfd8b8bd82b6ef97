/**
 * The demo page: pick an image, a model configuration and its two checkpoints, upscale ×4 on
 * WebGPU with progress and cancellation, compare before/after, download the PNG.
 */
import {
  BUNDLED_MODEL,
  ConfigError,
  DeviceLostError,
  GpuError,
  GpuLimitError,
  ImageError,
  IoError,
  NoAdapterError,
  PRESETS,
  StateDictMismatchError,
  blobSource,
  createGpuContext,
  createUpscaler,
  decodeImage,
  encodePng,
  openStateDict,
  parseModelConfig,
  type GpuContext,
  type GpuLimits,
  type ModelConfig,
  type RasterImage,
  type StateDict,
  type Upscaler,
} from '../src/index.js';
import { urlSource } from '../src/io/url-source.js';

/** 4 MP in, 67 MP out: beyond this the result no longer fits comfortably in a tab's memory. */
const MAX_INPUT_PIXELS = 2048 * 2048;
const CUSTOM_CONFIG = 'custom';
/** The model that runs with no files chosen: the one bundled in weights/ beside the page. */
const DEFAULT_PRESET = BUNDLED_MODEL;

/**
 * The kernels are written for WebGPU's default limits, which every core adapter offers; only
 * compatibility-mode or non-conforming adapters fall short.
 */
const REQUIRED_LIMITS: Partial<Record<keyof GpuLimits, number>> = {
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupStorageSize: 16384,
  maxStorageBuffersPerShaderStage: 8,
  maxComputeWorkgroupsPerDimension: 65535,
};

function byId<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
}

const ui = {
  app: byId<HTMLElement>('app'),
  message: byId<HTMLDivElement>('message'),
  messageTitle: byId<HTMLElement>('message-title'),
  messageDetail: byId<HTMLPreElement>('message-detail'),
  dropZone: byId<HTMLLabelElement>('drop-zone'),
  imageFile: byId<HTMLInputElement>('image-file'),
  preset: byId<HTMLSelectElement>('preset'),
  configFile: byId<HTMLInputElement>('config-file'),
  unetFile: byId<HTMLInputElement>('unet-file'),
  unetUrl: byId<HTMLInputElement>('unet-url'),
  vqFile: byId<HTMLInputElement>('vq-file'),
  vqUrl: byId<HTMLInputElement>('vq-url'),
  weightsHint: byId<HTMLElement>('weights-hint'),
  seed: byId<HTMLInputElement>('seed'),
  tile: byId<HTMLInputElement>('tile'),
  batch: byId<HTMLInputElement>('batch'),
  reference: byId<HTMLInputElement>('reference'),
  run: byId<HTMLButtonElement>('run'),
  cancel: byId<HTMLButtonElement>('cancel'),
  progress: byId<HTMLProgressElement>('progress'),
  progressLabel: byId<HTMLElement>('progress-label'),
  inputFigure: byId<HTMLElement>('input-figure'),
  inputPreview: byId<HTMLImageElement>('input-preview'),
  inputCaption: byId<HTMLElement>('input-caption'),
  compareFigure: byId<HTMLElement>('compare-figure'),
  compare: byId<HTMLElement>('compare'),
  before: byId<HTMLImageElement>('before'),
  after: byId<HTMLImageElement>('after'),
  slider: byId<HTMLInputElement>('slider'),
  resultCaption: byId<HTMLElement>('result-caption'),
  download: byId<HTMLAnchorElement>('download'),
  adapter: byId<HTMLDListElement>('adapter'),
  timings: byId<HTMLDListElement>('timings'),
  warnings: byId<HTMLUListElement>('warnings'),
};

type PageState = 'starting' | 'ready' | 'running' | 'done' | 'error' | 'unsupported';

/** A problem with what the user picked (nothing chosen yet, bad JSON, …): shown as is. */
class InputError extends Error {
  constructor(
    readonly title: string,
    detail: string,
  ) {
    super(detail);
    this.name = 'InputError';
  }
}

/** A weight file chosen from disk or given as a URL (the object identity says "same weights"), or none. */
type WeightChoice = File | string | undefined;

interface LoadedModel {
  upscaler: Upscaler;
  configJson: string;
  unet: WeightChoice;
  autoencoder: WeightChoice;
}

let gpuContext: Promise<GpuContext> | undefined;
let loaded: LoadedModel | undefined;
let selectedImage: { file: File; url: string; width: number; height: number } | undefined;
let resultUrl: string | undefined;
let running = false;
let cancelRequested = false;

function setState(state: PageState): void {
  ui.app.dataset.state = state;
  ui.run.disabled = state === 'running' || state === 'unsupported' || state === 'starting';
  ui.cancel.disabled = state !== 'running';
}

function showMessage(kind: 'error' | 'info', title: string, detail = ''): void {
  ui.message.hidden = false;
  ui.message.className = kind;
  ui.messageTitle.textContent = title;
  ui.messageDetail.textContent = detail;
  ui.messageDetail.hidden = detail === '';
}

function clearMessage(): void {
  ui.message.hidden = true;
}

/** A title that says what went wrong in the user's terms, over the library's detailed message. */
function describeError(error: unknown): { title: string; detail: string } {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof InputError) return { title: error.title, detail: message };
  if (error instanceof NoAdapterError) return { title: 'No WebGPU adapter', detail: message };
  if (error instanceof GpuLimitError) {
    return { title: "The GPU's limits are too small for this job", detail: `${message}\nTry a smaller tile size (Options).` };
  }
  if (error instanceof DeviceLostError)
    return { title: 'The GPU device was lost', detail: `${message}\nThe next run starts a new device.` };
  if (error instanceof GpuError) return { title: 'GPU error', detail: message };
  if (error instanceof StateDictMismatchError) {
    return {
      title: 'These weights do not fit the model',
      detail: `${message}\nCheck that the UNet and autoencoder files are not swapped and that the configuration matches the checkpoints.`,
    };
  }
  if (error instanceof ImageError) return { title: 'This image cannot be used', detail: message };
  if (error instanceof IoError) return { title: 'This weight file cannot be read', detail: message };
  if (error instanceof ConfigError) return { title: 'Invalid model configuration', detail: message };
  console.error(error);
  return { title: 'Unexpected error', detail: error instanceof Error && error.stack ? error.stack : message };
}

function isAbort(error: unknown): boolean {
  return error instanceof DOMException && error.name === 'AbortError';
}

function abortError(): DOMException {
  return new DOMException('the run was cancelled', 'AbortError');
}

function fillList(list: HTMLDListElement, entries: [key: string, label: string, value: string][]): void {
  list.replaceChildren(
    ...entries.map(([key, label, value]) => {
      const row = document.createElement('div');
      row.dataset.key = key;
      const dt = document.createElement('dt');
      dt.textContent = label;
      const dd = document.createElement('dd');
      dd.textContent = value;
      row.append(dt, dd);
      return row;
    }),
  );
}

const mebibytes = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

function checkLimits(ctx: GpuContext): void {
  const short = Object.entries(REQUIRED_LIMITS).filter(([name, needed]) => ctx.limits[name as keyof GpuLimits] < needed!);
  if (short.length) {
    throw new InputError(
      "This GPU's WebGPU limits are too small",
      short
        .map(([name, needed]) => `${name}: the adapter offers ${ctx.limits[name as keyof GpuLimits]}, deltadiff needs ${needed}`)
        .join('\n'),
    );
  }
}

/** The shared device, created on first use; a failure is not cached, so the next run retries. */
function context(): Promise<GpuContext> {
  const pending = (gpuContext ??= openContext());
  pending.catch(() => {
    if (gpuContext === pending) gpuContext = undefined;
  });
  return pending;
}

async function openContext(): Promise<GpuContext> {
  const ctx = await createGpuContext();
  showAdapter(ctx);
  try {
    checkLimits(ctx);
  } catch (error) {
    ctx.dispose();
    throw error;
  }
  return ctx;
}

function showAdapter(ctx: GpuContext): void {
  const a = ctx.adapter;
  const name = a.description || [a.vendor, a.architecture, a.device].filter(Boolean).join(' ') || 'unnamed adapter';
  fillList(ui.adapter, [
    ['adapter', 'Adapter', `${name}${a.isFallbackAdapter ? ' (software fallback)' : ''}`],
    ['shader-f16', 'shader-f16', ctx.features.shaderF16 ? 'yes' : 'no'],
    ['max-buffer', 'Largest buffer', mebibytes(ctx.limits.maxBufferSize)],
    ['max-binding', 'Largest storage binding', mebibytes(ctx.limits.maxStorageBufferBindingSize)],
  ]);
}

/** Drops the model and the device: after a failure mid-run, tensors may be stranded in its pool. */
async function resetGpu(): Promise<void> {
  loaded?.upscaler.dispose();
  loaded = undefined;
  const ctx = await gpuContext?.catch(() => undefined);
  ctx?.dispose();
  gpuContext = undefined;
}

function fillPresets(): void {
  ui.preset.add(new Option(`${BUNDLED_MODEL} (bundled, no files needed)`, BUNDLED_MODEL));
  for (const name of Object.keys(PRESETS)) ui.preset.add(new Option(`${name} (preset)`, name));
  ui.preset.add(new Option('custom: from the config file below', CUSTOM_CONFIG));
  ui.preset.value = DEFAULT_PRESET;
  showWeightsHint();
}

function showWeightsHint(): void {
  const preset = PRESETS[ui.preset.value];
  ui.weightsHint.textContent =
    ui.preset.value === BUNDLED_MODEL
      ? 'The bundled model, trained by deltadiff itself, is loaded from this site: no weight files needed.'
      : preset
        ? `Official files: UNet ${preset.unetFile}; autoencoder ${preset.autoencoderFile}.`
        : '';
}

/** The chosen model's config; undefined for the bundled model, whose config comes with its weights. */
async function modelConfig(): Promise<ModelConfig | undefined> {
  if (ui.preset.value === BUNDLED_MODEL) return undefined;
  if (ui.preset.value !== CUSTOM_CONFIG) return PRESETS[ui.preset.value].config;
  const file = ui.configFile.files?.[0];
  if (!file) throw new InputError('No model configuration', 'Choose a preset or a model_*.json config file.');
  let json: unknown;
  try {
    json = JSON.parse(await file.text());
  } catch (error) {
    throw new ConfigError(`${file.name} is not valid JSON: ${(error as Error).message}`);
  }
  return parseModelConfig(json, file.name);
}

function weightChoice(fileInput: HTMLInputElement, urlInput: HTMLInputElement, what: string): WeightChoice {
  const file = fileInput.files?.[0];
  if (file) return file;
  const url = urlInput.value.trim();
  if (url) return url;
  throw new InputError(`No ${what} weights`, `Choose the ${what} checkpoint (.pth or .safetensors) or give its URL.`);
}

async function stateDict(choice: WeightChoice): Promise<StateDict | undefined> {
  if (choice === undefined) return undefined;
  return openStateDict(typeof choice === 'string' ? await urlSource(choice) : blobSource(choice));
}

/** The upscaler for these weights, loading them unless the last run used the same ones. */
async function upscalerFor(
  ctx: GpuContext,
  model: ModelConfig | undefined,
  unet: WeightChoice,
  autoencoder: WeightChoice,
): Promise<{ upscaler: Upscaler; loadMs: number }> {
  const configJson = JSON.stringify(model ?? BUNDLED_MODEL);
  if (loaded && loaded.configJson === configJson && loaded.unet === unet && loaded.autoencoder === autoencoder) {
    return { upscaler: loaded.upscaler, loadMs: 0 };
  }
  loaded?.upscaler.dispose();
  loaded = undefined;
  const started = performance.now();
  const [unetDict, autoencoderDict] = await Promise.all([stateDict(unet), stateDict(autoencoder)]);
  const parts = autoencoderDict ? 2 : 1;
  // The UNet is loaded first, then the autoencoder, each reporting its own byte count.
  let part = 1;
  let lastDone = 0;
  const upscaler = await createUpscaler({
    model,
    unet: unetDict,
    autoencoder: autoencoderDict,
    device: ctx,
    onLoadProgress: (done, total) => {
      if (done < lastDone) part++;
      lastDone = done;
      showProgress(done / total, `loading weights ${part}/${parts}: ${mebibytes(done)} of ${mebibytes(total)}`);
      // Loading cleans up after itself when interrupted, so cancelling here leaks nothing.
      if (cancelRequested) throw abortError();
    },
  });
  loaded = { upscaler, configJson, unet, autoencoder };
  return { upscaler, loadMs: performance.now() - started };
}

function showProgress(fraction: number, label: string): void {
  ui.progress.value = fraction;
  ui.progressLabel.textContent = label;
}

function numberOption(input: HTMLInputElement): number | undefined {
  const value = input.valueAsNumber;
  return Number.isFinite(value) ? value : undefined;
}

async function selectImage(file: File): Promise<void> {
  clearMessage();
  if (selectedImage) URL.revokeObjectURL(selectedImage.url);
  selectedImage = undefined;
  ui.compareFigure.hidden = true;
  const url = URL.createObjectURL(file);
  ui.inputPreview.src = url;
  ui.inputFigure.hidden = false;
  let width = 0;
  let height = 0;
  try {
    await ui.inputPreview.decode();
    width = ui.inputPreview.naturalWidth;
    height = ui.inputPreview.naturalHeight;
  } catch {
    // The browser cannot show it; the library's decoder will say why when the run starts.
  }
  ui.inputCaption.textContent = width ? `${file.name}: ${width}×${height}` : file.name;
  selectedImage = { file, url, width, height };
  if (width * height > MAX_INPUT_PIXELS) {
    const megapixels = (width * height) / 1e6;
    showMessage(
      'error',
      'This image is too large',
      `${file.name} is ${width}×${height} (${megapixels.toFixed(1)} MP); this page takes up to ${(MAX_INPUT_PIXELS / 1e6).toFixed(1)} MP ` +
        `(e.g. 2048×2048), whose ×4 result is already ${((16 * MAX_INPUT_PIXELS) / 1e6).toFixed(0)} MP. Crop or downscale it first.`,
    );
  }
}

function showResult(image: RasterImage, png: Uint8Array<ArrayBuffer>, source: { file: File; url: string }): void {
  if (resultUrl) URL.revokeObjectURL(resultUrl);
  resultUrl = URL.createObjectURL(new Blob([png], { type: 'image/png' }));
  ui.before.src = source.url;
  ui.after.src = resultUrl;
  ui.compare.style.aspectRatio = `${image.width} / ${image.height}`;
  ui.resultCaption.textContent = `${image.width}×${image.height}`;
  ui.download.href = resultUrl;
  ui.download.download = `${source.file.name.replace(/\.[^.]*$/, '')}_x4.png`;
  ui.compareFigure.hidden = false;
}

async function run(): Promise<void> {
  if (running) return;
  running = true;
  cancelRequested = false;
  clearMessage();
  setState('running');
  let gpuWorkStarted = false;
  try {
    const source = selectedImage;
    if (!source) throw new InputError('No image', 'Choose or drop a PNG or JPEG first.');
    const model = await modelConfig();
    const unet = model ? weightChoice(ui.unetFile, ui.unetUrl, 'UNet') : undefined;
    const autoencoder = model?.autoencoder.type === 'vq' ? weightChoice(ui.vqFile, ui.vqUrl, 'autoencoder') : undefined;
    const image = decodeImage(new Uint8Array(await source.file.arrayBuffer()), source.file.name, { maxPixels: MAX_INPUT_PIXELS });
    const ctx = await context();
    const { upscaler, loadMs } = await upscalerFor(ctx, model, unet, autoencoder);
    const warnings = [...upscaler.warnings, ...(image.warnings ?? []).map((w) => `${source.file.name}: ${w}`)];
    ui.warnings.replaceChildren(...warnings.map((w) => Object.assign(document.createElement('li'), { textContent: w })));

    gpuWorkStarted = true;
    const batch = Math.max(1, numberOption(ui.batch) ?? 1);
    let lastTile = 0;
    const started = performance.now();
    const result = await upscaler.upscale(image, {
      seed: numberOption(ui.seed),
      tile: numberOption(ui.tile),
      reference: ui.reference.checked,
      batch,
      onProgress: (p) => {
        // The tile count advances only between batches, when no tensor of the run is alive:
        // stopping there strands nothing on the GPU (mid-sampling it would).
        const betweenBatches = p.tile !== lastTile;
        lastTile = p.tile;
        const inBatch = betweenBatches ? 0 : (p.step / p.steps) * Math.min(batch, p.tiles - p.tile);
        const label = betweenBatches
          ? `${p.tile} of ${p.tiles} tiles done`
          : `tile ${p.tile + 1} of ${p.tiles}: step ${p.step} of ${p.steps}`;
        showProgress((p.tile + inBatch) / p.tiles, cancelRequested ? `cancelling after this batch of tiles… (${label})` : label);
        if (cancelRequested && betweenBatches && p.tile < p.tiles) throw abortError();
      },
    });
    const upscaleMs = performance.now() - started;
    const encodeStarted = performance.now();
    // fast-png writes into a plain ArrayBuffer; the declared type only says ArrayBufferLike.
    const png = encodePng(result) as Uint8Array<ArrayBuffer>;
    const encodeMs = performance.now() - encodeStarted;
    showResult(result, png, source);
    const tiles = upscaler.lastTimings?.tiles ?? 1;
    fillList(ui.timings, [
      ['load', 'Loading weights', loadMs ? seconds(loadMs) : 'already loaded'],
      ['upscale', 'Upscaling', seconds(upscaleMs)],
      ['tiles', 'Tiles × steps', `${tiles} × ${upscaler.config.diffusion.steps}, ${seconds(upscaleMs / tiles)} per tile`],
      ['encode', 'PNG encoding', seconds(encodeMs)],
    ]);
    showProgress(1, `done: ${image.width}×${image.height} → ${result.width}×${result.height}`);
    setState('done');
  } catch (error) {
    if (isAbort(error)) {
      showProgress(0, 'cancelled');
      showMessage('info', 'Cancelled', 'The run was stopped before it finished.');
      setState('ready');
    } else {
      const { title, detail } = describeError(error);
      showMessage('error', title, detail);
      showProgress(0, '');
      if (gpuWorkStarted || error instanceof GpuError) await resetGpu();
      setState('error');
    }
  } finally {
    running = false;
  }
}

function noWebGpuReason(): string | undefined {
  if (navigator.gpu) return undefined;
  if (!window.isSecureContext) {
    return 'WebGPU only exists on secure pages: open this page over https, or from localhost / 127.0.0.1.';
  }
  return (
    'This browser does not offer WebGPU (navigator.gpu is missing). Use a current Chrome or Edge (113+), ' +
    'Safari 26+, or Firefox 141+ on Windows; on Linux, start Chromium with --enable-unsafe-webgpu ' +
    '(or enable chrome://flags/#enable-unsafe-webgpu).'
  );
}

function wireEvents(): void {
  ui.imageFile.addEventListener('change', () => {
    const file = ui.imageFile.files?.[0];
    if (file) void selectImage(file);
  });
  ui.dropZone.addEventListener('dragover', (event) => {
    event.preventDefault();
    ui.dropZone.classList.add('dragging');
  });
  ui.dropZone.addEventListener('dragleave', () => ui.dropZone.classList.remove('dragging'));
  ui.dropZone.addEventListener('drop', (event) => {
    event.preventDefault();
    ui.dropZone.classList.remove('dragging');
    const file = event.dataTransfer?.files[0];
    if (file) void selectImage(file);
  });
  ui.preset.addEventListener('change', showWeightsHint);
  ui.configFile.addEventListener('change', () => {
    if (ui.configFile.files?.length) ui.preset.value = CUSTOM_CONFIG;
    showWeightsHint();
  });
  ui.slider.addEventListener('input', () => ui.compare.style.setProperty('--split', `${ui.slider.value}%`));
  ui.run.addEventListener('click', () => void run());
  ui.cancel.addEventListener('click', () => {
    cancelRequested = true;
    ui.cancel.disabled = true;
    ui.progressLabel.textContent = `cancelling… ${ui.progressLabel.textContent}`;
  });
}

async function start(): Promise<void> {
  fillPresets();
  wireEvents();
  const reason = noWebGpuReason();
  if (reason) {
    showMessage('error', 'WebGPU is not available', reason);
    setState('unsupported');
    return;
  }
  try {
    await context();
    setState('ready');
  } catch (error) {
    const { title, detail } = describeError(error);
    showMessage('error', title, detail);
    gpuContext = undefined;
    setState(error instanceof NoAdapterError || error instanceof InputError ? 'unsupported' : 'error');
  }
}

void start();
