/** Errors raised by the GPU layer. Each names the op (or stage) that caused it. */

export class GpuError extends Error {
  constructor(
    message: string,
    readonly op?: string,
  ) {
    super(op ? `${op}: ${message}` : message);
    this.name = 'GpuError';
  }
}

/** No WebGPU adapter: the message tells the user what to install. */
export class NoAdapterError extends GpuError {
  constructor(detail = '') {
    super(
      'No WebGPU adapter was found' +
        (detail ? ` (${detail})` : '') +
        '. deltadiff needs a GPU driver with Vulkan, Metal or D3D12 support, or a software adapter: ' +
        "on Linux install Mesa's lavapipe >= 23 (Debian 12: `apt-get install -t bookworm-backports mesa-vulkan-drivers`; " +
        'Ubuntu 24.04 and later: `apt-get install mesa-vulkan-drivers`). In a browser, use one with WebGPU enabled ' +
        '(Chrome/Edge 113+, or Chromium with --enable-unsafe-webgpu).',
    );
    this.name = 'NoAdapterError';
  }
}

/** A WebGPU validation error, out-of-memory or internal error, attributed to an op. */
export class GpuValidationError extends GpuError {
  constructor(
    message: string,
    op: string,
    readonly kind: 'validation' | 'out-of-memory' | 'internal',
  ) {
    super(`${kind} error: ${message}`, op);
    this.name = 'GpuValidationError';
  }
}

export class DeviceLostError extends GpuError {
  constructor(reason: string, message: string) {
    super(`the GPU device was lost (${reason}): ${message}`);
    this.name = 'DeviceLostError';
  }
}

/** A request the device cannot satisfy (too large, too many workgroups, …). */
export class GpuLimitError extends GpuError {
  constructor(message: string, op?: string) {
    super(message, op);
    this.name = 'GpuLimitError';
  }
}
