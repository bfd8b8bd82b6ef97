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
