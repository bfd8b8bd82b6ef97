// The bench's peers: each of our rows paired by name with a peer's figure from the same run, the
// issue's targets judged from the pairs, the table's columns, and the PyTorch peer's line protocol
// (spoken here by a stand-in process: CI has no torch, and the pairing must not depend on it).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTorchPeer } from '../../bench/peer-torch.js';
import { emptyRow, judgeTargets, markdownTable, pairPeer, type BenchRow, type RowRole } from '../../bench/report.js';

const work = mkdtempSync(join(tmpdir(), 'deltadiff-bench-pairing-'));
const PLAN = { warmup: 1, minReps: 1, maxReps: 3, targetRepMs: 0, rowBudgetMs: 0 };

function ourRow(name: string, role: RowRole | null, ms: number, flop: number | null = null): BenchRow {
  const row = emptyRow(name, 'model', 'x', role);
  row.ms = ms;
  row.flop = flop;
  row.gflops = flop === null ? null : flop / ms / 1e6;
  row.reps = 3;
  row.batch = 1;
  return row;
}

test('pairPeer: the peer GFLOP/s by our FLOP count, ratio = peer ms ÷ ours; a failure keeps its reason', () => {
  const row = ourRow('unet conv2d 3×3 160ch@64²', 'unet-conv3x3', 50, 1.89e9);
  const torch = pairPeer(row, 'torch', { ms: 10 });
  assert.is(torch.gflops, 1.89e9 / 10 / 1e6);
  assert.is(torch.ratio, 0.2);
  assert.is(row.peers.torch, torch);
  const tfjs = pairPeer(row, 'tfjs', { error: 'device lost' }, 'batch 128');
  assert.equal(tfjs, { ms: null, gflops: null, ratio: null, note: 'batch 128', error: 'device lost' });
});

test('judgeTargets: each of the issue #16 targets from its pair, only where the pair ran', () => {
  const conv = ourRow('unet conv2d 3×3 160ch@64²', 'unet-conv3x3', 30, 1.89e9);
  pairPeer(conv, 'tfjs', { ms: 120 }); // 4× faster than TF.js
  pairPeer(conv, 'torch', { ms: 6 }); // 0.2 of PyTorch's throughput
  const unet = ourRow('UNet step (64² latent)', 'unet-step', 1500);
  pairPeer(unet, 'torch', { ms: 800 }); // 1.875× its time
  const sr = ourRow('DeltaDiff ×4 SR 64²→256² (4 steps)', 'sr', 25_000);
  pairPeer(sr, 'torch', { ms: 10_000 }); // 2.5× its time
  const encode = ourRow('VQ encode 256²', 'vq-encode', 1000);
  pairPeer(encode, 'torch', { error: 'killed' }); // no figure, no target
  const upscale = ourRow('lite upscale 256×170, default tiling and batch', 'lite-upscale', 9000);
  pairPeer(upscale, 'torch', { ms: 3000 }, 'batch 128'); // 3× its time
  pairPeer(upscale, 'upscalerjs', { ms: 13_500 });
  const train = ourRow('lite train step (batch 16 × 64² crops)', 'lite-train', 250);
  const lonely = ourRow('VQ decode → 256²', 'vq-decode', 2000); // no peer ran
  const failed = ourRow('UNet step (64² latent) again', 'unet-step', 1);
  failed.error = 'out of memory';
  pairPeer(failed, 'torch', { ms: 100 });

  const targets = judgeTargets([conv, unet, sr, encode, upscale, train, lonely, failed]);
  const byName = new Map(targets.map((t) => [t.name, t]));
  const expect = (name: string, value: string, goal: string, met: boolean) => {
    assert.equal(byName.get(name), { name, value, goal, met }, name);
  };
  expect('unet conv2d 3×3 160ch@64²: ours ÷ TF.js throughput', '4.00×', '≥ 3×', true);
  expect('unet conv2d 3×3 160ch@64²: ours ÷ PyTorch throughput', '0.20', '≥ 0.33 (1/3)', false);
  expect("UNet step (64² latent): our time ÷ PyTorch's", '1.88×', '≤ 2×', true);
  expect("DeltaDiff ×4 SR 64²→256² (4 steps): our time ÷ PyTorch's", '2.50×', '≤ 2×', false);
  expect("lite upscale 256×170, default tiling and batch: our time ÷ PyTorch's", '3.00×', '≤ 2×', false);
  expect('lite upscale 256×170, default tiling and batch: faster than UpscalerJS esrgan-medium', '1.50× its speed', '> 1×', true);
  expect('lite train step (batch 16 × 64² crops): faster than 1.16 s', '4.64×', '≥ 4×', true);
  assert.is(targets.length, 7, JSON.stringify(targets.map((t) => t.name)));
});

test('markdownTable: every peer in its own columns, its failure or batch in its cell; UpscalerJS columns only when it ran', () => {
  const conv = ourRow('conv', 'unet-conv3x3', 30, 1.89e9);
  pairPeer(conv, 'tfjs', { ms: 120 });
  pairPeer(conv, 'torch', { error: 'a | b' });
  const upscale = ourRow('upscale', 'lite-upscale', 9000);
  pairPeer(upscale, 'torch', { ms: 3000 }, 'batch 128');
  const [head, rule, convLine, upscaleLine] = markdownTable([conv, upscale]).split('\n');
  const columns = head.split(' | ').length;
  assert.not.match(head, 'UpscalerJS');
  assert.is(rule.split('|').length - 2, columns);
  assert.is(convLine, '| conv | x | 1.89 | 30.0 | 63.0 | 120 | 15.8 | 4.00× | failed: a \\| b | — | — | 3×1 |  |');
  assert.is(upscaleLine, '| upscale | x | — | 9000 | — | — | — | — | 3000 (batch 128) | — | 0.333× | 3×1 |  |');
  pairPeer(upscale, 'upscalerjs', { ms: 13_500 });
  const withPeer = markdownTable([upscale]).split('\n');
  assert.match(withPeer[0], '| UpscalerJS ms | UpscalerJS ÷ ours |');
  assert.match(withPeer[2], '| 13500 | 1.50× |');
});

/** A stand-in for bench/peer-torch.py speaking its protocol: echoes each request's fields back in its answer. */
function fakePeer(body: string): string[] {
  const path = join(work, `peer-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(path, body);
  return [process.execPath, path];
}

const ECHO_PEER = `
import { createInterface } from 'node:readline';
console.log(JSON.stringify({ peer: 'PyTorch 9.9 CPU', threads: 2, blas: '/usr/lib/libopenblasp-r0.3.21.so' }));
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) break;
  const r = JSON.parse(line);
  if (r.op === 'broken') console.log(JSON.stringify({ name: r.name, error: 'ValueError: unknown op' }));
  else if (r.op === 'liar') console.log(JSON.stringify({ name: 'another row', ms: 1, wall_ms: 1, reps: 1, batch: 1 }));
  else if (r.op === 'crash') process.exit(3);
  else console.log(JSON.stringify({ name: r.name, ms: r.m * 1000 + r.plan.maxReps, wall_ms: 0, reps: r.plan.maxReps, batch: r.k }));
}
`;

test('startTorchPeer: requests carry the row name, the problem and the plan; answers are paired by name', async () => {
  const peer = await startTorchPeer(fakePeer(ECHO_PEER));
  if ('unavailable' in peer) throw new Error(peer.unavailable);
  assert.is(peer.name, 'PyTorch 9.9 CPU, 2 threads, BLAS libopenblasp-r0.3.21.so');
  assert.equal(await peer.run('matmul 2×5×7', { op: 'matmul', m: 2, k: 5, n: 7 }, PLAN), { ms: 2003, wall_ms: 0, reps: 3, batch: 5 });
  assert.equal(await peer.run('x', { op: 'broken' } as never, PLAN), { error: 'ValueError: unknown op' });
  const misnamed = await peer.run('mine', { op: 'liar' } as never, PLAN);
  assert.equal(misnamed, { error: 'the PyTorch peer answered for "another row", not "mine"' });
  const crashed = await peer.run('row', { op: 'crash' } as never, PLAN);
  assert.ok('error' in crashed && crashed.error.startsWith('the PyTorch peer exited'), JSON.stringify(crashed));
  assert.equal(await peer.run('after', { op: 'matmul', m: 1, k: 1, n: 1 }, PLAN), { error: 'the PyTorch peer has exited (no output)' });
  peer.close();
});

test('startTorchPeer: unavailable, with the reason, when python3 or torch is missing', async () => {
  const noTorch = await startTorchPeer(
    fakePeer(
      `console.error('Traceback (most recent call last):'); console.error("ModuleNotFoundError: No module named 'torch'"); process.exit(1);`,
    ),
  );
  assert.equal(noTorch, { unavailable: "PyTorch peer did not start (ModuleNotFoundError: No module named 'torch')" });
  const noPython = await startTorchPeer([join(work, 'no-such-python3'), 'peer-torch.py']);
  assert.ok('unavailable' in noPython && noPython.unavailable.includes('ENOENT'), JSON.stringify(noPython));
  const garbage = await startTorchPeer(fakePeer(`console.log('hello');`));
  assert.ok('unavailable' in garbage, JSON.stringify(garbage));
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
