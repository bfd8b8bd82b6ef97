/**
 * Typed errors of the I/O layer. Every failure caused by the content of a file (truncated,
 * corrupt, lying about sizes, unsafe, unsupported) is one of these, so callers can tell "bad
 * input" from a bug with a single `instanceof IoError`. Each carries the name of the file.
 */

export class IoError extends Error {
  override name = 'IoError';

  constructor(
    /** The file (or source) the problem was found in. */
    readonly fileName: string,
    problem: string,
    options?: ErrorOptions,
  ) {
    super(`${fileName}: ${problem}`, options);
  }
}

/** A checkpoint (pth, safetensors) that cannot be read or does not fit the model. */
export class CheckpointError extends IoError {
  override name = 'CheckpointError';
}

/** A pickle names a global outside the allow-list; nothing it names was imported or run. */
export class UnsafePickleError extends CheckpointError {
  override name = 'UnsafePickleError';

  constructor(
    fileName: string,
    /** The refused global as `module.name`, e.g. `os.system`. */
    readonly globalName: string,
  ) {
    super(
      fileName,
      `refusing pickle global '${globalName}': a checkpoint may only name the torch tensor, storage and ` +
        `OrderedDict globals a state dict needs (nothing was imported or executed)`,
    );
  }
}

export interface ShapeMismatch {
  readonly key: string;
  readonly expected: readonly number[];
  readonly actual: readonly number[];
}

/** A state dict lacks keys the model needs, or holds them with the wrong shape. */
export class StateDictMismatchError extends CheckpointError {
  override name = 'StateDictMismatchError';

  constructor(
    fileName: string,
    readonly missing: readonly string[],
    readonly misShaped: readonly ShapeMismatch[],
  ) {
    const lines = [
      ...missing.map((key) => `  missing: ${key}`),
      ...misShaped.map((m) => `  shape of ${m.key}: expected [${m.expected.join(', ')}], found [${m.actual.join(', ')}]`),
    ];
    super(fileName, `state dict does not fit the model (${missing.length} missing, ${misShaped.length} mis-shaped):\n${lines.join('\n')}`);
  }
}

/** An image that cannot be decoded or encoded. */
export class ImageError extends IoError {
  override name = 'ImageError';
}
