/** A small, strict argument parser: unknown flags are errors, values are typed by the spec. */

export type FlagKind = 'boolean' | 'string' | 'number';

export interface ParsedArgs {
  positionals: string[];
  flags: Record<string, string | number | boolean | undefined>;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * Parses `argv` against `spec` (flag name without dashes → kind). Accepts `--flag value`,
 * `--flag=value`, and `-o` as an alias of `--out` when the spec has `out`.
 */
export function parseArgs(argv: string[], spec: Record<string, FlagKind>): ParsedArgs {
  const positionals: string[] = [];
  const flags: ParsedArgs['flags'] = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    let name = arg.replace(/^--?/, '');
    let inline: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      inline = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    if (name === 'o' && 'out' in spec) name = 'out';
    const kind = spec[name];
    if (!kind) throw new UsageError(`unknown option ${arg}`);
    if (kind === 'boolean') {
      if (inline !== undefined) throw new UsageError(`option --${name} takes no value`);
      flags[name] = true;
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`option --${name} needs a value`);
    if (kind === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new UsageError(`option --${name} needs a number, got "${value}"`);
      flags[name] = n;
    } else flags[name] = value;
  }
  return { positionals, flags };
}

/** The values a numeric option accepts: bounds are inclusive unless marked exclusive. */
export interface NumberRange {
  integer?: boolean;
  min?: number;
  max?: number;
  minExclusive?: boolean;
  maxExclusive?: boolean;
}

/** The range in words, as error messages show it: "a whole number ≥ 1", "a number > 0 and < 1". */
export function describeRange(range: NumberRange): string {
  const bounds: string[] = [];
  if (range.min !== undefined) bounds.push(`${range.minExclusive ? '>' : '≥'} ${range.min}`);
  if (range.max !== undefined) bounds.push(`${range.maxExclusive ? '<' : '≤'} ${range.max}`);
  return [range.integer ? 'a whole number' : 'a number', bounds.join(' and ')].filter((part) => part !== '').join(' ');
}

/** Whether `value` lies in `range`. */
export function inRange(value: number, range: NumberRange): boolean {
  if (!Number.isFinite(value) || (range.integer && !Number.isInteger(value))) return false;
  if (range.min !== undefined && (range.minExclusive ? value <= range.min : value < range.min)) return false;
  if (range.max !== undefined && (range.maxExclusive ? value >= range.max : value > range.max)) return false;
  return true;
}

/** `value` if it lies in `range`; otherwise a UsageError naming the option `--name` and the range. */
export function checkNumber(name: string, value: number, range: NumberRange): number {
  if (!inRange(value, range)) throw new UsageError(`--${name} must be ${describeRange(range)}, got ${value}`);
  return value;
}

/** The number given for `--name` (undefined when absent), checked against `range`. */
export function numberOption(flags: ParsedArgs['flags'], name: string, range: NumberRange): number | undefined {
  const value = flags[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'number') throw new UsageError(`--${name} needs a number, got "${String(value)}"`);
  return checkNumber(name, value, range);
}
