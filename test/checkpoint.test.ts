import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  listCheckpoints,
  loadLatestValidCheckpoint,
  pruneCheckpoints,
  saveCheckpoint,
  type SaveInput,
} from '../src/checkpoint/checkpoint.js';
import type { TensorEntry } from '../src/checkpoint/tensor-file.js';
import { SoapTrainError } from '../src/errors.js';
import { acquireRunLock } from '../src/run/lock.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function tempRun(): string {
  const d = mkdtempSync(join(tmpdir(), 'soap-ckpt-'));
  dirs.push(d);
  return d;
}

/** Values that must survive bit for bit: NaN with a payload, −0, ±Inf, denormals, int extremes. */
function awkwardTensors(step: number): Array<[string, TensorEntry]> {
  const f = new Float32Array([0, -0, Infinity, -Infinity, 1.4e-45, 3.4028234e38, step, Math.PI]);
  new Uint32Array(f.buffer)[0] = 0x7fc00123; // NaN with a payload
  return [
    ['params/w', { dtype: 'float32', shape: [2, 4], data: f }],
    ['params/b', { dtype: 'float32', shape: [3], data: new Float32Array([1, 2, 3]) }],
    ['optim/w/count', { dtype: 'int32', shape: [2], data: new Int32Array([-2147483648, 2147483647]) }],
  ];
}

function input(step: number): SaveInput {
  return {
    step,
    tokens_seen: step * 64,
    wall_clock_s: step * 0.5,
    rng: { seed: 3 },
    schedule: { step, lr: 0.001 },
    optimizer: { type: 'adamw', config: { type: 'adamw' }, counters: { w: { step } } },
    model_config: { d_model: 4 },
    progress: { last_train_loss: 2.5, last_val_loss: null, best_val_loss: null, last_eval_step: -1, eval_s: 0 },
    tensors: (async function* () {
      yield* awkwardTensors(step);
    })(),
  };
}

test('save → load round-trips every bit, meta included', async () => {
  const run = tempRun();
  await saveCheckpoint(run, input(4));
  const loaded = loadLatestValidCheckpoint(run);
  assert.ok(loaded);
  assert.equal(loaded.meta.step, 4);
  assert.deepEqual(loaded.meta.optimizer.counters, { w: { step: 4 } });
  for (const [key, entry] of awkwardTensors(4)) {
    const got = loaded.tensors.get(key);
    assert.ok(got, key);
    assert.equal(got.dtype, entry.dtype);
    assert.deepEqual(got.shape, entry.shape);
    assert.deepEqual(new Uint8Array(got.data.buffer), new Uint8Array(entry.data.buffer), key);
  }
  assert.deepEqual(readdirSync(join(run, 'checkpoints')), ['step-4'], 'no temp folder left behind');
});

test('truncated, corrupted and half-written checkpoints are skipped for the previous valid one', async () => {
  const run = tempRun();
  for (const step of [2, 4, 6, 8]) await saveCheckpoint(run, input(step));
  truncateSync(join(run, 'checkpoints', 'step-8', 'tensors.bin'), 10);
  const bin6 = join(run, 'checkpoints', 'step-6', 'tensors.bin');
  const bytes = readFileSync(bin6);
  bytes[5] ^= 0xff;
  writeFileSync(bin6, bytes);
  rmSync(join(run, 'checkpoints', 'step-4', 'meta.json')); // a crash before meta.json
  mkdirSync(join(run, 'checkpoints', 'step-10')); // an empty folder
  mkdirSync(join(run, 'checkpoints', '.tmp-step-12-999')); // a crash mid-write
  const skipped: string[] = [];
  const loaded = loadLatestValidCheckpoint(run, (info) => skipped.push(`${info.step}: ${info.reason}`));
  assert.equal(loaded?.meta.step, 2);
  assert.deepEqual(skipped, [
    '10: no meta.json (incomplete write)',
    // 8 floats (32 bytes), 3 floats (12) padded to 48, then 2 ints: 56 bytes.
    '8: tensors.bin has 10 bytes, expected 56 (truncated?)',
    '6: tensors.bin checksum mismatch (corrupted)',
    '4: no meta.json (incomplete write)',
  ]);
});

test('no valid checkpoint is a bad-input error naming the folder; no checkpoints at all is null', async () => {
  const run = tempRun();
  assert.equal(loadLatestValidCheckpoint(run), null);
  await saveCheckpoint(run, input(2));
  rmSync(join(run, 'checkpoints', 'step-2', 'index.json'));
  assert.throws(
    () => loadLatestValidCheckpoint(run),
    (err: unknown) => err instanceof SoapTrainError && err.exitCode === 2 && /checkpoints: no valid checkpoint among 1 \(step-2: index\.json is missing\)/.test(err.oneLine()),
  );
});

test('prune keeps the newest k plus every keep_every step, and clears temp folders', async () => {
  const run = tempRun();
  for (const step of [1, 2, 3, 4, 5, 6, 7, 8]) await saveCheckpoint(run, input(step));
  mkdirSync(join(run, 'checkpoints', '.tmp-step-9-1'));
  pruneCheckpoints(run, { keep: 2, keepEvery: 3 });
  assert.deepEqual(listCheckpoints(run, { full: true }).map((c) => c.step), [3, 6, 7, 8]);
  assert.ok(!existsSync(join(run, 'checkpoints', '.tmp-step-9-1')));
});

test('disk full while writing: the previous checkpoint stays valid and the error says so', async () => {
  const run = tempRun();
  await saveCheckpoint(run, input(2));
  let calls = 0;
  const failing = () => {
    calls += 1;
    if (calls === 2) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
  };
  await assert.rejects(
    saveCheckpoint(run, input(4), failing),
    (err: unknown) => err instanceof SoapTrainError && err.exitCode === 1 && /disk full while writing checkpoint step-4; .*step-2 stays valid/.test(err.message),
  );
  assert.deepEqual(readdirSync(join(run, 'checkpoints')), ['step-2']);
  assert.equal(loadLatestValidCheckpoint(run)?.meta.step, 2);
});

test('a run directory in use is refused; a stale lock from a dead pid is taken over', () => {
  const run = tempRun();
  const lock = acquireRunLock(run);
  // A live owner: this very process, seen from a second holder, is refused.
  writeFileSync(lock.path, JSON.stringify({ pid: process.ppid, hostname: JSON.parse(readFileSync(lock.path, 'utf8')).hostname, started_at: 'x' }));
  assert.throws(() => acquireRunLock(run), /in use by pid \d+/);
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const deadPid = Number(child.stdout);
  const owner = JSON.parse(readFileSync(lock.path, 'utf8')) as { hostname: string };
  writeFileSync(lock.path, JSON.stringify({ pid: deadPid, hostname: owner.hostname, started_at: 'x' }));
  const taken = acquireRunLock(run);
  assert.equal(taken.tookOverStaleFrom, deadPid);
  taken.release();
  assert.ok(!existsSync(taken.path));
});
