/**
 * Kernels declared once. A declaration lists the uniforms by name and scalar type, the storage
 * bindings by name, element type and access, the workgroup size and the WGSL of `main`; the
 * uniform struct, the `@binding` lines and the entry point's signature are generated from it, so
 * the WGSL interface and the host-side packing cannot drift apart. The host packs uniforms and
 * orders bindings by name (Kernel.packUniforms / Kernel.orderBindings): a missing, extra or
 * mis-typed value is an error naming the field, never a silently shifted word.
 */

export type ScalarType = 'u32' | 'i32' | 'f32';
export type StorageScalar = ScalarType | 'f16';
/** What a storage array holds: a scalar or a vector of one. */
export type ElementType = StorageScalar | `vec${2 | 3 | 4}<${StorageScalar}>`;

export interface UniformDeclaration<U extends string = string> {
  name: U;
  type: ScalarType;
}

export interface BindingDeclaration<B extends string = string> {
  name: B;
  type: ElementType;
  access: 'read' | 'read_write';
}

export interface KernelDeclaration<U extends string, B extends string> {
  /** Used in labels and error messages. */
  name: string;
  /** Fields of the uniform struct, read in WGSL as `p.<name>`; bound at binding 0 when any. */
  uniforms: readonly UniformDeclaration<U>[];
  /** Storage arrays, bound in this order after the uniforms and named in WGSL as declared. */
  bindings: readonly BindingDeclaration<B>[];
  workgroupSize: number | readonly [number, number?, number?];
  /** Module-scope WGSL that `main` uses: helper functions, constants, workgroup variables. */
  functions?: string;
  /**
   * The body of `fn main`. It sees the builtins `gid` (global_invocation_id), `lid`
   * (local_invocation_index), `wid` (workgroup_id) and `nwg` (num_workgroups).
   */
  main: string;
  /** WGSL extensions the body needs besides f16 (enabled by itself when a binding holds f16). */
  extensions?: readonly string[];
  /** Further parameters of `main`, e.g. `@builtin(subgroup_invocation_id) lane: u32`. */
  extraBuiltins?: readonly string[];
}

export interface Kernel<U extends string, B extends string> {
  readonly name: string;
  /** The complete WGSL module. */
  readonly code: string;
  readonly workgroupSize: readonly [number, number, number];
  readonly uniforms: readonly UniformDeclaration<U>[];
  readonly bindings: readonly BindingDeclaration<B>[];
  /** The uniform block for these values, or undefined for a kernel without uniforms. */
  packUniforms(values: Readonly<Record<U, number>>): ArrayBuffer | undefined;
  /** The values in binding order. */
  orderBindings<T>(values: Readonly<Record<B, T>>): T[];
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const BUILTINS = ['gid', 'lid', 'wid', 'nwg', 'p'];

export function defineKernel<U extends string, B extends string>(declaration: KernelDeclaration<U, B>): Kernel<U, B> {
  const { name, uniforms, bindings } = declaration;
  const names = [...uniforms.map((u) => u.name), ...bindings.map((b) => b.name)];
  for (const field of names) {
    if (!IDENTIFIER.test(field)) throw new Error(`kernel ${name}: "${field}" is not a WGSL identifier`);
  }
  assertUnique(
    name,
    'uniform',
    uniforms.map((u) => u.name),
  );
  assertUnique(name, 'binding', [...bindings.map((b) => b.name), ...BUILTINS]);
  const size = typeof declaration.workgroupSize === 'number' ? [declaration.workgroupSize] : declaration.workgroupSize;
  const workgroupSize = [size[0], size[1] ?? 1, size[2] ?? 1] as const;
  if (!workgroupSize.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new Error(`kernel ${name}: workgroup size ${workgroupSize.join('×')} is not a list of positive integers`);
  }
  const code = [...(bindings.some((b) => b.type.includes('f16')) ? ['f16'] : []), ...(declaration.extensions ?? [])]
    .map((extension) => `enable ${extension};\n`)
    .join('');
  return {
    name,
    code: `${code + interfaceWgsl(uniforms, bindings)}${declaration.functions ?? ''}
@compute @workgroup_size(${workgroupSize.join(', ')})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>${(declaration.extraBuiltins ?? []).map((b) => `, ${b}`).join('')}) {${declaration.main}
}`,
    workgroupSize,
    uniforms,
    bindings,
    packUniforms: (values) => packUniforms(name, uniforms, values),
    orderBindings: <T>(values: Readonly<Record<B, T>>): T[] => {
      assertSameKeys(
        name,
        'binding',
        bindings.map((b) => b.name),
        values,
      );
      return bindings.map((b) => values[b.name]);
    },
  };
}

/** The uniform struct and `@binding` lines of a declaration: the only place bindings are written. */
function interfaceWgsl(uniforms: readonly UniformDeclaration[], bindings: readonly BindingDeclaration[]): string {
  const lines: string[] = [];
  if (uniforms.length) {
    lines.push(`struct Uniforms { ${uniforms.map((u) => `${u.name}: ${u.type}`).join(', ')} }`);
    lines.push('@group(0) @binding(0) var<uniform> p: Uniforms;');
  }
  const first = uniforms.length ? 1 : 0;
  bindings.forEach((b, i) => lines.push(`@group(0) @binding(${first + i}) var<storage, ${b.access}> ${b.name}: array<${b.type}>;`));
  return `${lines.join('\n')}\n`;
}

/**
 * Uniform values in declaration order, 4 bytes each: the struct has scalar members only, so
 * WGSL's layout rules put member i at byte 4·i; the block is padded to 16 bytes.
 */
function packUniforms(
  kernel: string,
  uniforms: readonly UniformDeclaration[],
  values: Readonly<Record<string, number>>,
): ArrayBuffer | undefined {
  assertSameKeys(
    kernel,
    'uniform',
    uniforms.map((u) => u.name),
    values,
  );
  if (!uniforms.length) return undefined;
  const buffer = new ArrayBuffer(Math.ceil(uniforms.length / 4) * 16);
  const view = new DataView(buffer);
  uniforms.forEach(({ name, type }, i) => {
    const v = values[name];
    const fits =
      typeof v === 'number' &&
      (type === 'f32'
        ? !Number.isNaN(v)
        : Number.isInteger(v) && (type === 'u32' ? v >= 0 && v <= 0xffffffff : v >= -0x80000000 && v <= 0x7fffffff));
    if (!fits) throw new Error(`kernel ${kernel}: uniform ${name} = ${v} is not a ${type}`);
    if (type === 'f32') view.setFloat32(i * 4, v, true);
    else if (type === 'i32') view.setInt32(i * 4, v, true);
    else view.setUint32(i * 4, v, true);
  });
  return buffer;
}

function assertSameKeys(kernel: string, what: string, declared: readonly string[], values: object): void {
  const given = Object.keys(values);
  const missing = declared.filter((name) => !given.includes(name));
  const extra = given.filter((name) => !declared.includes(name));
  if (missing.length) throw new Error(`kernel ${kernel}: missing ${what} ${missing.join(', ')}`);
  if (extra.length) throw new Error(`kernel ${kernel}: no ${what} named ${extra.join(', ')} (declared: ${declared.join(', ')})`);
}

function assertUnique(kernel: string, what: string, names: readonly string[]): void {
  const repeated = names.filter((name, i) => names.indexOf(name) !== i);
  if (repeated.length) throw new Error(`kernel ${kernel}: ${what} name ${repeated.join(', ')} is used twice (or is reserved)`);
}

/**
 * A kernel factory built once per distinct argument list: a factory composes its WGSL (through
 * wgsl-preprocessor and template strings) on every call, which cost ≈ 40 % of the host time of a
 * batch-1 forward when done per dispatch. Arguments are primitives, arrays or small plain objects,
 * compared by value (objects by their keys in order); the `limit` most recently used kernels are
 * kept, so a factory called with ever-new sizes cannot grow without bound.
 */
export function kernelFamily<A extends readonly unknown[], K>(build: (...args: A) => K, limit = 64): (...args: A) => K {
  if (!Number.isInteger(limit) || limit < 1) throw new Error(`kernelFamily: limit ${limit} is not a positive integer`);
  const kernels = new Map<string, K>();
  return (...args: A): K => {
    const key = argumentsKey(args);
    let kernel = kernels.get(key);
    if (kernel === undefined) {
      kernel = build(...args);
      if (kernels.size >= limit) kernels.delete(kernels.keys().next().value as string);
    } else {
      // A Map iterates in insertion order: re-inserting makes the oldest entry the least recently used.
      kernels.delete(key);
    }
    kernels.set(key, kernel);
    return kernel;
  };
}

/** A string that tells argument lists apart by value (unlike JSON, undefined ≠ null and NaN ≠ null). */
function argumentsKey(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'number':
    case 'boolean':
    case 'undefined':
      return String(value);
    case 'string':
      return JSON.stringify(value);
    case 'object':
      if (Array.isArray(value)) return `[${value.map(argumentsKey).join(',')}]`;
      if (Object.getPrototypeOf(value) === Object.prototype) {
        return `{${Object.entries(value)
          .map(([k, v]) => `${JSON.stringify(k)}:${argumentsKey(v)}`)
          .join(',')}}`;
      }
  }
  throw new Error(`kernelFamily: argument ${String(value)} is not a primitive, an array or a plain object`);
}
