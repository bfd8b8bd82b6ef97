import { CheckpointError, type ShapeMismatch, StateDictMismatchError } from './errors.js';
import { TensorHandle } from './host-tensor.js';
import type { PickleValue } from './pickle.js';

/**
 * From whatever a checkpoint holds to the flat `key → tensor` map a model loads: unwrap the
 * training script's container, flatten nesting, strip the prefixes DataParallel and
 * torch.compile add, and compare against the keys and shapes a model expects.
 */

/** Keys under which training scripts store the model's state dict. */
const WRAPPER_KEYS = ['state_dict', 'model_state_dict', 'model', 'module', 'net', 'params', 'ema', 'params_ema', 'ema_state_dict'];
/** Prefixes added by DataParallel / DistributedDataParallel (`module.`) and torch.compile (`_orig_mod.`). */
const WRAPPER_PREFIXES = ['module.', '_orig_mod.'];
/**
 * Buffers a model derives from its config rather than learns: Swin's relative-position index
 * and shift mask (the mask follows the runtime size), BatchNorm's step counter.
 */
const DERIVED_BUFFER_NAMES = new Set(['relative_position_index', 'attn_mask', 'num_batches_tracked']);
const LISTED_NAMES = 10;

export interface NormalizeOptions {
  /**
   * The wrapper to descend into when a checkpoint holds several state dicts (e.g. 'state_dict'
   * and 'ema'; the CLI's --weights-key). With one or none to choose from it changes nothing.
   */
  wrapperKey?: string;
}

export interface NormalizedStateDict {
  /** Flat keys (nested dicts and lists joined with '.') without wrapper prefixes, in file order. */
  tensors: Map<string, TensorHandle>;
  /** The wrapper keys descended into, outermost first (e.g. ['state_dict']). */
  unwrapped: string[];
  warnings: string[];
}

/** Removes leading `module.` and `_orig_mod.` prefixes, in any order and repeated. */
export function stripWrapperPrefixes(key: string): string {
  for (;;) {
    const prefix = WRAPPER_PREFIXES.find((p) => key.startsWith(p));
    if (prefix === undefined) return key;
    key = key.slice(prefix.length);
  }
}

/** True for buffers a model rebuilds from its config (see DERIVED_BUFFER_NAMES). */
export function isDerivedBuffer(key: string): boolean {
  return DERIVED_BUFFER_NAMES.has(key.slice(key.lastIndexOf('.') + 1));
}

export function normalizeStateDict(root: PickleValue, fileName: string, options: NormalizeOptions = {}): NormalizedStateDict {
  const unwrapped: string[] = [];
  let node = root;
  for (;;) {
    if (!(node instanceof Map)) {
      const where = unwrapped.length > 0 ? `checkpoint['${unwrapped.join("']['")}']` : 'the checkpoint';
      throw new CheckpointError(fileName, `${where} is not a dict of tensors`);
    }
    const dict = node;
    if ([...dict.values()].some((value) => value instanceof TensorHandle)) break;
    const candidates =
      options.wrapperKey !== undefined && dict.get(options.wrapperKey) instanceof Map
        ? [options.wrapperKey]
        : WRAPPER_KEYS.filter((key) => dict.get(key) instanceof Map);
    if (candidates.length === 0) break;
    if (candidates.length > 1) {
      const asked = options.wrapperKey === undefined ? '' : `, none of them '${options.wrapperKey}'`;
      throw new CheckpointError(
        fileName,
        `the checkpoint holds several state dicts (${candidates.join(', ')})${asked}; choose one with --weights-key <key> (library: the wrapperKey option)`,
      );
    }
    unwrapped.push(candidates[0]);
    node = dict.get(candidates[0])!;
  }

  const tensors = new Map<string, TensorHandle>();
  const ignored: string[] = [];
  const seen = new Set<object>();
  // Iterative depth-first walk in file order: a deeply nested pickle cannot exhaust the call stack.
  const work: [string, PickleValue][] = [['', node]];
  while (work.length > 0) {
    const [path, value] = work.pop()!;
    if (value instanceof TensorHandle) {
      const key = stripWrapperPrefixes(path);
      if (tensors.has(key)) {
        throw new CheckpointError(fileName, `two entries become '${key}' once module./_orig_mod. prefixes are removed`);
      }
      tensors.set(key, value);
    } else if (value instanceof Map || Array.isArray(value)) {
      if (seen.has(value)) throw new CheckpointError(fileName, `'${path}' is reachable twice (a shared or cyclic container)`);
      seen.add(value);
      const children: [string, PickleValue][] = [];
      for (const [key, child] of value instanceof Map ? value : value.entries()) {
        const name = typeof key === 'string' || typeof key === 'number' || typeof key === 'bigint' ? String(key) : undefined;
        if (name === undefined) ignored.push(`${path}[non-string key]`);
        else children.push([path === '' ? name : `${path}.${name}`, child]);
      }
      for (let i = children.length - 1; i >= 0; i--) work.push(children[i]);
    } else {
      ignored.push(path);
    }
  }
  const warnings = ignored.length > 0 ? [`ignored ${ignored.length} non-tensor entries: ${listSome(ignored)}`] : [];
  return { tensors, unwrapped, warnings };
}

export interface MatchOptions {
  /** Do not require or shape-check derived buffers (isDerivedBuffer), nor warn about them. */
  ignoreBuffers?: boolean;
  /** For messages. */
  fileName?: string;
}

export interface MatchReport {
  /** Keys in the state dict the model does not have, in state-dict order. */
  unexpected: string[];
  /** One line per group of unexpected keys, e.g. "ignored 120 unexpected keys: loss.* (120)". */
  warnings: string[];
}

/**
 * Checks a state dict against the keys and shapes a model expects. Missing or mis-shaped keys
 * throw one StateDictMismatchError listing all of them; unexpected keys are only reported.
 */
export function matchStateDict(
  dict: ReadonlyMap<string, { readonly shape: readonly number[] }>,
  expected: ReadonlyMap<string, readonly number[]>,
  options: MatchOptions = {},
): MatchReport {
  const skip = (key: string) => options.ignoreBuffers === true && isDerivedBuffer(key);
  const missing: string[] = [];
  const misShaped: ShapeMismatch[] = [];
  for (const [key, shape] of expected) {
    if (skip(key)) continue;
    const found = dict.get(key);
    if (found === undefined) missing.push(key);
    else if (found.shape.length !== shape.length || found.shape.some((size, d) => size !== shape[d])) {
      misShaped.push({ key, expected: shape, actual: found.shape });
    }
  }
  if (missing.length > 0 || misShaped.length > 0) {
    throw new StateDictMismatchError(options.fileName ?? 'state dict', missing, misShaped);
  }
  const unexpected = [...dict.keys()].filter((key) => !expected.has(key) && !skip(key));
  const groups = new Map<string, number>();
  for (const key of unexpected) {
    const dot = key.indexOf('.');
    const group = dot < 0 ? key : `${key.slice(0, dot)}.*`;
    groups.set(group, (groups.get(group) ?? 0) + 1);
  }
  const warnings =
    unexpected.length > 0
      ? [`ignored ${unexpected.length} unexpected keys: ${listSome([...groups].map(([group, n]) => `${group} (${n})`))}`]
      : [];
  return { unexpected, warnings };
}

function listSome(items: readonly string[]): string {
  const shown = items.slice(0, LISTED_NAMES).join(', ');
  return items.length > LISTED_NAMES ? `${shown}, … (${items.length - LISTED_NAMES} more)` : shown;
}
