import { CheckpointError, UnsafePickleError } from './errors.js';
import { type HostDType, TensorHandle } from './host-tensor.js';

/**
 * A pickle READER for `torch.save` files: it decodes the opcodes of protocols 2–5 that state
 * dicts use into plain values, and stands in for the few globals a state dict names with
 * pure functions from an allow-list. Nothing a file names is ever imported or executed; any
 * other global is refused with an UnsafePickleError naming it.
 *
 * Values: None → null; bool → boolean; int → number (bigint beyond 2^53); float → number;
 * str → string; bytes → Uint8Array; list → array; tuple → frozen array; dict and
 * OrderedDict → Map (insertion order and non-string keys kept); tensors → whatever the
 * `makeTensor` hook builds (a TensorHandle).
 */

/** Something an allow-listed global stands for that is not plain data (a class, a storage). */
export class PickleOpaque {
  constructor(readonly description: string) {}
}

export type PickleValue = null | boolean | number | bigint | string | Uint8Array | PickleValue[] | PickleDict | TensorHandle | PickleOpaque;

export type PickleDict = Map<PickleValue, PickleValue>;

/** A torch storage class (`torch.FloatStorage`, …): only tells the element type. */
export class TorchStorageType extends PickleOpaque {
  constructor(
    className: string,
    readonly dtype: HostDType,
  ) {
    super(`torch.${className}`);
  }
}

/** A storage a tensor points into, as named by a persistent id; the caller binds `key` to bytes. */
export class TorchStorageRef extends PickleOpaque {
  constructor(
    readonly key: string,
    readonly dtype: HostDType,
    /** Elements the file claims the storage holds. */
    readonly elementCount: number,
  ) {
    super(`storage ${key}`);
  }
}

/** The arguments of `torch._utils._rebuild_tensor_v2`: a strided view into a storage. */
export interface TensorView {
  readonly storage: TorchStorageRef;
  readonly storageOffset: number;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
}

export interface ReadPickleOptions {
  fileName: string;
  /** Offset of the pickle in `bytes` (legacy files hold several pickles back to back). */
  start?: number;
  /** Builds the tensor for a rebuilt view; the reader has already checked the view's types. */
  makeTensor(view: TensorView): TensorHandle;
}

/** The pickle ran past the end of the bytes it was given (a reader may retry with more). */
export class TruncatedPickleError extends CheckpointError {
  override name = 'TruncatedPickleError';
}

/** A global the allow-list stands in for, with a pure implementation taking the call's arguments. */
class AllowedGlobal extends PickleOpaque {
  constructor(
    qualifiedName: string,
    readonly call: StandIn,
  ) {
    super(qualifiedName);
  }
}

interface CallContext {
  fail(problem: string): never;
  makeTensor(view: TensorView): TensorHandle;
}

const STORAGE_DTYPES: Readonly<Record<string, HostDType>> = {
  FloatStorage: 'f32',
  HalfStorage: 'f16',
  BFloat16Storage: 'bf16',
  DoubleStorage: 'f64',
  LongStorage: 'i64',
  IntStorage: 'i32',
  ShortStorage: 'i16',
  CharStorage: 'i8',
  ByteStorage: 'u8',
  BoolStorage: 'bool',
};

function isTuple(value: PickleValue): value is PickleValue[] {
  return Array.isArray(value) && Object.isFrozen(value);
}

function intArg(value: PickleValue, what: string, context: CallContext): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    return context.fail(`${what} must be a non-negative integer`);
  }
  return value;
}

function intTupleArg(value: PickleValue, what: string, context: CallContext): number[] {
  if (!Array.isArray(value)) return context.fail(`${what} must be a tuple of integers`);
  return value.map((item) => intArg(item, what, context));
}

function rebuildTensor(args: readonly PickleValue[], context: CallContext): PickleValue {
  // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  const [storage, storageOffset, shape, stride] = args;
  if (args.length < 4 || !(storage instanceof TorchStorageRef)) {
    return context.fail('_rebuild_tensor_v2 needs (storage, offset, size, stride, …)');
  }
  return context.makeTensor({
    storage,
    storageOffset: intArg(storageOffset, 'tensor storage offset', context),
    shape: intTupleArg(shape, 'tensor size', context),
    stride: intTupleArg(stride, 'tensor stride', context),
  });
}

function rebuildParameter(args: readonly PickleValue[], context: CallContext): PickleValue {
  // (data, requires_grad, backward_hooks[, state]): a Parameter is its data for inference.
  const [data] = args;
  return data instanceof TensorHandle ? data : context.fail('_rebuild_parameter needs a tensor');
}

function codecsEncode(args: readonly PickleValue[], context: CallContext): PickleValue {
  // Protocol 2 has no bytes opcode, so Python 3 pickles bytes as _codecs.encode(text, 'latin1').
  const [text, encoding] = args;
  if (typeof text !== 'string') return context.fail('_codecs.encode needs a string');
  if (encoding === 'latin1' || encoding === 'latin-1') {
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code > 0xff) return context.fail('_codecs.encode: text is not latin-1');
      bytes[i] = code;
    }
    return bytes;
  }
  if (encoding === 'utf-8' || encoding === 'utf8') return new TextEncoder().encode(text);
  return context.fail(`_codecs.encode: unsupported encoding ${String(encoding)}`);
}

type StandIn = (args: readonly PickleValue[], context: CallContext) => PickleValue;

const standIn = (qualifiedName: string, call: StandIn): [string, AllowedGlobal] => [qualifiedName, new AllowedGlobal(qualifiedName, call)];

/**
 * The allow-list: each global a state dict needs, mapped to a pure stand-in (or, for storage
 * classes, to the element type they name). Every name not listed here is refused.
 */
const ALLOWED_GLOBALS = new Map<string, AllowedGlobal | TorchStorageType>([
  standIn('collections.OrderedDict', (args, c) => (args.length === 0 ? new Map() : c.fail('OrderedDict(…) with arguments'))),
  standIn('torch._utils._rebuild_tensor_v2', rebuildTensor),
  standIn('torch._utils._rebuild_parameter', rebuildParameter),
  standIn('torch._utils._rebuild_parameter_with_state', rebuildParameter),
  standIn('torch.Size', (args, c) => intTupleArg(args[0] ?? null, 'torch.Size', c)),
  standIn('torch.device', (args, c) => (typeof args[0] === 'string' ? args.join(':') : c.fail('torch.device needs a string'))),
  standIn('_codecs.encode', codecsEncode),
  ...Object.entries(STORAGE_DTYPES).map(([className, dtype]) => [`torch.${className}`, new TorchStorageType(className, dtype)] as const),
]);

enum Op {
  MARK = 0x28, // (
  STOP = 0x2e, // .
  POP = 0x30, // 0
  POP_MARK = 0x31, // 1
  DUP = 0x32, // 2
  BINBYTES = 0x42, // B
  SHORT_BINBYTES = 0x43, // C
  BINFLOAT = 0x47, // G
  BININT = 0x4a, // J
  BININT1 = 0x4b, // K
  BININT2 = 0x4d, // M
  NONE = 0x4e, // N
  BINPERSID = 0x51, // Q
  REDUCE = 0x52, // R
  BINSTRING = 0x54, // T
  SHORT_BINSTRING = 0x55, // U
  BINUNICODE = 0x58, // X
  EMPTY_LIST = 0x5d, // ]
  APPEND = 0x61, // a
  BUILD = 0x62, // b
  GLOBAL = 0x63, // c
  DICT = 0x64, // d
  APPENDS = 0x65, // e
  BINGET = 0x68, // h
  INST = 0x69, // i
  LONG_BINGET = 0x6a, // j
  LIST = 0x6c, // l
  OBJ = 0x6f, // o
  BINPUT = 0x71, // q
  LONG_BINPUT = 0x72, // r
  SETITEM = 0x73, // s
  TUPLE = 0x74, // t
  SETITEMS = 0x75, // u
  EMPTY_DICT = 0x7d, // }
  EMPTY_TUPLE = 0x29, // )
  PROTO = 0x80,
  NEWOBJ = 0x81,
  TUPLE1 = 0x85,
  TUPLE2 = 0x86,
  TUPLE3 = 0x87,
  NEWTRUE = 0x88,
  NEWFALSE = 0x89,
  LONG1 = 0x8a,
  LONG4 = 0x8b,
  SHORT_BINUNICODE = 0x8c,
  BINUNICODE8 = 0x8d,
  BINBYTES8 = 0x8e,
  NEWOBJ_EX = 0x92,
  STACK_GLOBAL = 0x93,
  MEMOIZE = 0x94,
  FRAME = 0x95,
  BYTEARRAY8 = 0x96,
}

const MARK = Symbol('mark');
/** Wider integers do not occur in state dicts, and BigInt parsing grows with their width. */
const MAX_LONG_BYTES = 1024;
type StackItem = PickleValue | typeof MARK;

const utf8 = new TextDecoder('utf-8', { fatal: true });

export interface PickleResult {
  value: PickleValue;
  /** Offset just past the STOP opcode. */
  end: number;
}

/** Reads one pickle from `bytes` (from `options.start`); see the module comment for the value mapping. */
export function readPickle(bytes: Uint8Array, options: ReadPickleOptions): PickleResult {
  const { fileName } = options;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = options.start ?? 0;
  const stack: StackItem[] = [];
  const memo = new Map<number, PickleValue>();

  // Typed on the binding so that calls narrow like a `throw` does.
  const fail: (problem: string) => never = (problem) => {
    throw new CheckpointError(fileName, `pickle at byte ${pos}: ${problem}`);
  };
  const context: CallContext = { fail, makeTensor: options.makeTensor };

  const need = (length: number): number => {
    if (pos + length > bytes.byteLength) {
      throw new TruncatedPickleError(fileName, `pickle is truncated: ${length} bytes needed at byte ${pos}`);
    }
    const at = pos;
    pos += length;
    return at;
  };
  const u8 = () => bytes[need(1)];
  const u16 = () => view.getUint16(need(2), true);
  const u32 = () => view.getUint32(need(4), true);
  const u64 = () => {
    const at = need(8);
    const value = view.getUint32(at, true) + view.getUint32(at + 4, true) * 2 ** 32;
    return Number.isSafeInteger(value) ? value : fail('length field is impossibly large');
  };
  const take = (length: number) => {
    const at = need(length);
    return bytes.subarray(at, at + length);
  };
  const text = (length: number): string => {
    try {
      return utf8.decode(take(length));
    } catch (error) {
      if (error instanceof CheckpointError) throw error;
      return fail('string is not valid UTF-8');
    }
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw new TruncatedPickleError(fileName, `pickle is truncated: unterminated line at byte ${pos}`);
    return text(end - pos + 1).slice(0, -1);
  };

  const pop = (): PickleValue => {
    const item = stack.pop();
    if (item === undefined) return fail('stack underflow');
    if (item === MARK) return fail('unexpected MARK');
    return item;
  };
  const top = (): PickleValue => {
    const item = stack.at(-1);
    if (item === undefined || item === MARK) return fail('stack underflow');
    return item;
  };
  /** Pops everything down to the topmost MARK (and the MARK). */
  const popToMark = (): PickleValue[] => {
    const mark = stack.lastIndexOf(MARK);
    if (mark < 0) return fail('no MARK on the stack');
    const items = stack.splice(mark);
    items.shift();
    return items as PickleValue[];
  };
  const tuple = (items: PickleValue[]): PickleValue[] => Object.freeze(items) as PickleValue[];
  const resolveGlobal = (module: string, name: string): PickleValue => {
    const allowed = ALLOWED_GLOBALS.get(`${module}.${name}`);
    if (allowed === undefined) throw new UnsafePickleError(fileName, `${module}.${name}`);
    return allowed;
  };
  const call = (callable: PickleValue, args: PickleValue): PickleValue => {
    if (!(callable instanceof AllowedGlobal)) return fail(`cannot call ${describe(callable)}`);
    if (!Array.isArray(args)) return fail(`arguments of ${callable.description} are not a tuple`);
    return callable.call(args, context);
  };
  const asList = (value: PickleValue): PickleValue[] =>
    Array.isArray(value) && !isTuple(value) ? value : fail(`cannot append to ${describe(value)}`);
  const asDict = (value: PickleValue): PickleDict => (value instanceof Map ? value : fail(`cannot set items on ${describe(value)}`));
  const setItems = (dict: PickleDict, items: PickleValue[]): void => {
    if (items.length % 2 !== 0) fail('odd number of items for a dict');
    for (let i = 0; i < items.length; i += 2) dict.set(items[i], items[i + 1]);
  };
  const memoGet = (index: number): PickleValue => {
    const value = memo.get(index);
    return value === undefined ? fail(`memo entry ${index} is not defined`) : value;
  };
  const signedLittleEndian = (raw: Uint8Array): number | bigint => {
    if (raw.length > MAX_LONG_BYTES) fail(`integer of ${raw.length} bytes`);
    if (raw.length === 0) return 0;
    let hex = '0x';
    for (let i = raw.length - 1; i >= 0; i--) hex += raw[i].toString(16).padStart(2, '0');
    let value = BigInt(hex);
    if (raw[raw.length - 1] & 0x80) value -= 1n << BigInt(raw.length * 8);
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  };

  for (;;) {
    const opcode = u8();
    switch (opcode) {
      case Op.PROTO:
        if (u8() > 5) fail('pickle protocol newer than 5');
        break;
      case Op.FRAME:
        u64(); // framing only groups opcodes for buffered readers; the bytes follow inline.
        break;
      case Op.STOP: {
        const value = pop();
        if (stack.length !== 0) fail('stack is not empty at STOP');
        return { value, end: pos };
      }
      case Op.MARK:
        stack.push(MARK);
        break;
      case Op.POP:
        pop();
        break;
      case Op.POP_MARK:
        popToMark();
        break;
      case Op.DUP:
        stack.push(top());
        break;
      case Op.NONE:
        stack.push(null);
        break;
      case Op.NEWTRUE:
        stack.push(true);
        break;
      case Op.NEWFALSE:
        stack.push(false);
        break;
      case Op.BININT:
        stack.push(view.getInt32(need(4), true));
        break;
      case Op.BININT1:
        stack.push(u8());
        break;
      case Op.BININT2:
        stack.push(u16());
        break;
      case Op.LONG1:
        stack.push(signedLittleEndian(take(u8())));
        break;
      case Op.LONG4: {
        const length = view.getInt32(need(4), true);
        stack.push(length < 0 ? fail('negative LONG4 length') : signedLittleEndian(take(length)));
        break;
      }
      case Op.BINFLOAT:
        stack.push(view.getFloat64(need(8), false));
        break;
      case Op.SHORT_BINUNICODE:
      case Op.SHORT_BINSTRING:
        stack.push(text(u8()));
        break;
      case Op.BINUNICODE:
      case Op.BINSTRING:
        stack.push(text(u32()));
        break;
      case Op.BINUNICODE8:
        stack.push(text(u64()));
        break;
      case Op.SHORT_BINBYTES:
        stack.push(new Uint8Array(take(u8())));
        break;
      case Op.BINBYTES:
        stack.push(new Uint8Array(take(u32())));
        break;
      case Op.BINBYTES8:
      case Op.BYTEARRAY8:
        stack.push(new Uint8Array(take(u64())));
        break;
      case Op.EMPTY_TUPLE:
        stack.push(tuple([]));
        break;
      case Op.TUPLE1:
        stack.push(tuple([pop()]));
        break;
      case Op.TUPLE2: {
        const b = pop();
        stack.push(tuple([pop(), b]));
        break;
      }
      case Op.TUPLE3: {
        const c = pop();
        const b = pop();
        stack.push(tuple([pop(), b, c]));
        break;
      }
      case Op.TUPLE:
        stack.push(tuple(popToMark()));
        break;
      case Op.EMPTY_LIST:
        stack.push([]);
        break;
      case Op.LIST:
        stack.push(popToMark());
        break;
      case Op.APPEND: {
        const item = pop();
        asList(top()).push(item);
        break;
      }
      case Op.APPENDS: {
        const items = popToMark();
        const list = asList(top());
        for (const item of items) list.push(item);
        break;
      }
      case Op.EMPTY_DICT:
        stack.push(new Map());
        break;
      case Op.DICT: {
        const dict: PickleDict = new Map();
        setItems(dict, popToMark());
        stack.push(dict);
        break;
      }
      case Op.SETITEM: {
        const value = pop();
        const key = pop();
        asDict(top()).set(key, value);
        break;
      }
      case Op.SETITEMS: {
        const items = popToMark();
        setItems(asDict(top()), items);
        break;
      }
      case Op.BINPUT:
        memo.set(u8(), top());
        break;
      case Op.LONG_BINPUT:
        memo.set(u32(), top());
        break;
      case Op.MEMOIZE:
        memo.set(memo.size, top());
        break;
      case Op.BINGET:
        stack.push(memoGet(u8()));
        break;
      case Op.LONG_BINGET:
        stack.push(memoGet(u32()));
        break;
      case Op.GLOBAL: {
        const module = line();
        stack.push(resolveGlobal(module, line()));
        break;
      }
      case Op.STACK_GLOBAL: {
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(resolveGlobal(module, name));
        break;
      }
      case Op.INST: {
        const module = line();
        const callable = resolveGlobal(module, line());
        stack.push(call(callable, popToMark()));
        break;
      }
      case Op.OBJ: {
        const [callable, ...args] = popToMark();
        stack.push(call(callable ?? null, args));
        break;
      }
      case Op.REDUCE: {
        const args = pop();
        stack.push(call(pop(), args));
        break;
      }
      case Op.NEWOBJ: {
        const args = pop();
        stack.push(call(pop(), args));
        break;
      }
      case Op.NEWOBJ_EX: {
        const kwargs = pop();
        const args = pop();
        if (!(kwargs instanceof Map) || kwargs.size > 0) fail('NEWOBJ_EX with keyword arguments');
        stack.push(call(pop(), args));
        break;
      }
      case Op.BUILD: {
        const state = pop();
        const target = top();
        // torch's OrderedDict state dicts carry a `_metadata` attribute (module versions) set by
        // BUILD; the tensors do not depend on it, so it is dropped. Anything else is refused.
        if (!(target instanceof Map) || !(state === null || state instanceof Map)) {
          fail(`cannot set the state of ${describe(target)}`);
        }
        break;
      }
      case Op.BINPERSID:
        stack.push(persistentStorage(pop(), context));
        break;
      default:
        fail(`unsupported pickle opcode 0x${opcode.toString(16).padStart(2, '0')}`);
    }
  }
}

/** Decodes torch's persistent id ('storage', storage_type, key, location, numel[, view_metadata]). */
function persistentStorage(pid: PickleValue, context: CallContext): TorchStorageRef {
  if (!Array.isArray(pid) || pid[0] !== 'storage' || (pid.length !== 5 && pid.length !== 6)) {
    return context.fail(`unsupported persistent id ${describe(pid)}`);
  }
  // The location ('cpu', 'cuda:0') does not matter: everything is read to host memory.
  const [, type, key, , count, viewMetadata] = pid;
  if (!(type instanceof TorchStorageType)) return context.fail('persistent id names no storage type');
  if (typeof key !== 'string') return context.fail('persistent id has a malformed key');
  if (viewMetadata !== undefined && viewMetadata !== null) {
    return context.fail('storage views of the pre-1.0 format are not supported; re-save with a current PyTorch');
  }
  return new TorchStorageRef(key, type.dtype, intArg(count, 'storage size', context));
}

function describe(value: PickleValue | undefined): string {
  if (value === null || value === undefined) return 'None';
  if (value instanceof PickleOpaque) return value.description;
  if (value instanceof Map) return 'a dict';
  if (Array.isArray(value)) return isTuple(value) ? 'a tuple' : 'a list';
  if (value instanceof Uint8Array) return 'bytes';
  if (value instanceof TensorHandle) return 'a tensor';
  return `a ${typeof value}`;
}
