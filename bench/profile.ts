/**
 * Where a piece of GPU work spends its time, per op: records the dispatches of one run of it,
 * then replays each alone (after a sync, a few times) and charges the process CPU time, less an
 * empty sync's, to its op. On a software adapter the process CPU time includes the adapter's own
 * threads and varies far less with the machine's load than the wall time. Replays read and write
 * the recorded buffers as they are, so only the timings mean anything.
 */
import type { GpuContext, KernelCall } from '../src/gpu/context.js';

export interface OpProfile {
  /** The op and its kernel's storage bindings (`groupNorm x,stats,gamma,beta→y`): one op's kernels apart. */
  op: string;
  dispatches: number;
  /** CPU milliseconds of one run's dispatches of this op. */
  ms: number;
  /** Distinct workgroup grids, as `x×y×z`. */
  workgroups: string[];
}

export interface Profile {
  dispatches: number;
  /** Sum of every op's `ms`. */
  totalMs: number;
  /** Ops by descending time. */
  ops: OpProfile[];
}

/**
 * Profiles the dispatches `work` records (its own result is left to the caller). `repeats`
 * replays per dispatch: more smooth the figures, fewer bound a long run's cost.
 */
export async function profileDispatches(ctx: GpuContext, work: () => void, repeats = 3): Promise<Profile> {
  const calls: KernelCall[] = [];
  const record = ctx.dispatch.bind(ctx);
  ctx.dispatch = (call) => {
    calls.push(call);
    record(call);
  };
  try {
    work();
  } finally {
    ctx.dispatch = record;
  }
  await ctx.sync();
  const cpuMs = async (body: () => void): Promise<number> => {
    const before = process.cpuUsage();
    body();
    await ctx.sync();
    const used = process.cpuUsage(before);
    return (used.user + used.system) / 1000;
  };
  const syncs = 20;
  let syncMs = 0;
  for (let i = 0; i < syncs; i++) syncMs += (await cpuMs(() => {})) / syncs;
  const byOp = new Map<string, { dispatches: number; ms: number; workgroups: Set<string> }>();
  for (const call of calls) {
    const ms =
      (await cpuMs(() => {
        for (let r = 0; r < repeats; r++) ctx.dispatch(call);
      })) - syncMs;
    const label = kernelLabel(call);
    const entry = byOp.get(label) ?? { dispatches: 0, ms: 0, workgroups: new Set<string>() };
    entry.dispatches++;
    entry.ms += Math.max(0, ms / repeats);
    entry.workgroups.add(call.workgroups.map((n) => n ?? 1).join('×'));
    byOp.set(label, entry);
  }
  const ops = [...byOp]
    .map(([op, e]) => ({ op, dispatches: e.dispatches, ms: e.ms, workgroups: [...e.workgroups] }))
    .sort((a, b) => b.ms - a.ms);
  return { dispatches: calls.length, totalMs: ops.reduce((sum, e) => sum + e.ms, 0), ops };
}

const STORAGE_BINDING = /var<storage, (read|read_write)> (\w+)/g;

/** The op and what its kernel reads and writes, from the bindings its WGSL declares. */
function kernelLabel(call: KernelCall): string {
  const bindings = [...call.code.matchAll(STORAGE_BINDING)];
  const names = (access: string) =>
    bindings
      .filter((b) => b[1] === access)
      .map((b) => b[2])
      .join(',');
  return `${call.op} ${names('read')}→${names('read_write')}`;
}

/** The profile as text lines: a header, then one line per op (ms, share, dispatches, op, grids). */
export function formatProfile(profile: Profile): string[] {
  return [
    `profile: ${profile.dispatches} dispatches, ${profile.totalMs.toFixed(0)} CPU-ms replayed one by one`,
    ...profile.ops.map(
      (e) =>
        `${e.ms.toFixed(1).padStart(9)} ms ${((100 * e.ms) / profile.totalMs).toFixed(1).padStart(5)} % ${String(e.dispatches).padStart(4)}× ${e.op}` +
        `  (workgroups ${e.workgroups.slice(0, 4).join(', ')}${e.workgroups.length > 4 ? ', …' : ''})`,
    ),
  ];
}
