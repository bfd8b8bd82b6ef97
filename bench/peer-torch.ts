/**
 * The PyTorch CPU peer: bench/peer-torch.py in a child process, asked for one row at a time over
 * its line protocol (described there), so each of its rows runs right after ours in the same run.
 * Optional: when python3 or torch is missing it is reported unavailable and the bench goes on.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { ModelConfig } from '../src/nn/config.js';
import type { MeasurePlan } from './measure.js';
import type { PeerProblem } from './peer-tfjs.js';

/** The whole-model problems the torch peer knows (bench/peer-torch.py's ops). */
export type TorchModelProblem =
  | { op: 'unet'; config: ModelConfig; batch: number; latent: number }
  | { op: 'vq-encode' | 'vq-decode'; config: ModelConfig; size: number }
  /** The ×s job on `tiles` LR tiles of tile = [h, w], `batch` at a time. */
  | { op: 'sample'; config: ModelConfig; tiles: number; tile: [number, number]; batch: number }
  | { op: 'train'; config: ModelConfig; batch: number; latent: number };

export type TorchProblem = PeerProblem | TorchModelProblem;

export interface TorchTiming {
  ms: number;
  wall_ms: number;
  reps: number;
  batch: number;
}

export interface TorchPeer {
  /** e.g. "PyTorch 1.13.0 CPU, 2 threads, BLAS libopenblasp-r0.3.21.so". */
  name: string;
  threads: number;
  /** The BLAS library torch's Linear and matmul run on, as the peer found it loaded. */
  blas: string | null;
  run(name: string, problem: TorchProblem, plan: MeasurePlan): Promise<TorchTiming | { error: string }>;
  close(): void;
}

/** The peer's hello line. */
interface Hello {
  peer: string;
  threads: number;
  blas: string | null;
}

/** bench/peer-torch.py, from this file's compiled place (dist/bench) or its source place (bench). */
export function torchPeerScript(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const candidates = [`${here}../../bench/peer-torch.py`, `${here}peer-torch.py`];
  return candidates.find((p) => existsSync(p)) ?? candidates[0];
}

/** Debian's python3 (where python3-torch installs) when present, else python3 on the PATH. */
export function defaultPython(): string {
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

/**
 * Starts the peer (`command` defaults to python3 bench/peer-torch.py) and waits for its hello;
 * says why instead when it cannot start (no python3, no torch: the child's last stderr line).
 */
export async function startTorchPeer(
  command: readonly string[] = [defaultPython(), torchPeerScript()],
): Promise<TorchPeer | { unavailable: string }> {
  let child: ChildProcess;
  try {
    child = spawn(command[0], command.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    return { unavailable: `${command[0]} could not start (${e instanceof Error ? e.message : String(e)})` };
  }
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const lines = createInterface({ input: child.stdout! });
  const waiting: ((line: string | null) => void)[] = [];
  const queued: (string | null)[] = [];
  const deliver = (line: string | null) => {
    const next = waiting.shift();
    if (next) next(line);
    else queued.push(line);
  };
  lines.on('line', deliver);
  let exited = false;
  const onGone = () => {
    exited = true;
    deliver(null);
  };
  child.on('close', onGone);
  child.on('error', (e) => {
    stderr += `\n${e.message}`;
    onGone();
  });
  const nextLine = (): Promise<string | null> =>
    queued.length ? Promise.resolve(queued.shift()!) : exited ? Promise.resolve(null) : new Promise((resolve) => waiting.push(resolve));
  const why = () =>
    stderr
      .trim()
      .split('\n')
      .filter((l) => l.trim())
      .pop() ?? 'no output';

  const first = await nextLine();
  let hello: Hello;
  try {
    if (first === null) throw new Error(why());
    hello = JSON.parse(first) as Hello;
    if (typeof hello.peer !== 'string') throw new Error(`unexpected first line: ${first.slice(0, 200)}`);
  } catch (e) {
    child.kill();
    return { unavailable: `PyTorch peer did not start (${e instanceof Error ? e.message : String(e)})` };
  }
  const blasName = hello.blas ? hello.blas.split('/').pop()! : null;
  return {
    name: `${hello.peer}, ${hello.threads} threads${blasName ? `, BLAS ${blasName}` : ''}`,
    threads: hello.threads,
    blas: hello.blas,
    async run(name, problem, plan) {
      if (exited) return { error: `the PyTorch peer has exited (${why()})` };
      child.stdin!.write(`${JSON.stringify({ name, ...problem, plan })}\n`);
      const line = await nextLine();
      if (line === null) return { error: `the PyTorch peer exited (${why()})` };
      const answer = JSON.parse(line) as { name: string } & (TorchTiming | { error: string });
      if (answer.name !== name)
        return { error: `the PyTorch peer answered for ${JSON.stringify(answer.name)}, not ${JSON.stringify(name)}` };
      if ('error' in answer) return { error: answer.error };
      return { ms: answer.ms, wall_ms: answer.wall_ms, reps: answer.reps, batch: answer.batch };
    },
    close() {
      if (!exited) child.stdin!.end('\n');
    },
  };
}
