/**
 * Checkpoints on disk: bit-exact round trips, every kind of damage (and I/O errors) skipped for
 * the previous valid checkpoint, pruning, and a full disk that leaves the previous checkpoint
 * usable.
 * (tf-side restore and leak counts: checkpoint-state.test.ts; the format: checkpoint-format.test.ts.)
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, readSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  listCheckpoints,
  loadLatestValidCheckpoint,
  pruneCheckpoints,
  saveCheckpoint,
  type CheckpointInfo,
  type FileReader,
  type SaveInput,
  type TensorEntry,
  type TensorIndex,
} from '../src/checkpoint/checkpoint.js';
import { SoapTrainError } from '../src/errors.js';
import { tempDirs } from './helpers/tmp.js';

const tempRun = tempDirs('soap-ckpt-');

/** Values that must survive bit for bit: NaN with a payload, −0, ±Inf, denormals, int extremes. */
function awkwardTensors(step: number): Array<[string, TensorEntry]> {
  const f = new Float32Array([0, -0, Infinity, -Infinity, 1.4e-45, 3.4028234e38, step, Math.PI]);
  new Uint32Array(f.buffer)[0] = 0x7fc00123; // quiet NaN with a payload
  new Uint32Array(f.buffer)[7] = 0xffa00001; // negative signalling-pattern NaN
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

const ckpt = (run: string, step: number, file = '') => join(run, 'checkpoints', `step-${step}`, file);

test('save → load round-trips every bit and the metadata, and leaves no temp folder', async () => {
  const run = tempRun();
  const saved = await saveCheckpoint(run, input(4));
  assert.equal(saved.dir, ckpt(run, 4));
  assert.equal(saved.reused, false);
  const loaded = loadLatestValidCheckpoint(run);
  assert.ok(loaded);
  assert.equal(loaded.meta.format_version, 2);
  assert.equal(loaded.meta.step, 4);
  assert.equal(loaded.meta.tokens_seen, 256);
  assert.deepEqual(loaded.meta.rng, { seed: 3 });
  assert.deepEqual(loaded.meta.optimizer.counters, { w: { step: 4 } });
  assert.deepEqual(Object.keys(loaded.index.tensors), awkwardTensors(4).map(([key]) => key));
  for (const [key, entry] of awkwardTensors(4)) {
    const got = loaded.readTensor(key);
    assert.equal(got.dtype, entry.dtype);
    assert.equal(got.data.constructor, entry.data.constructor);
    assert.deepEqual(got.shape, entry.shape);
    assert.deepEqual(new Uint8Array(got.data.buffer), new Uint8Array(entry.data.buffer), key);
  }
  // The recorded digests are the files' own; every array starts on an 8-byte boundary.
  const bin = readFileSync(ckpt(run, 4, 'tensors.bin'));
  assert.equal(createHash('sha256').update(bin).digest('hex'), loaded.meta.files['tensors.bin'].sha256);
  const index = JSON.parse(readFileSync(ckpt(run, 4, 'index.json'), 'utf8')) as TensorIndex;
  assert.deepEqual(Object.values(index.tensors).map((e) => e.offset), [0, 32, 48]);
  assert.deepEqual(readdirSync(join(run, 'checkpoints')), ['step-4']);
  assert.deepEqual(readdirSync(ckpt(run, 4)).sort(), ['index.json', 'meta.json', 'tensors.bin']);
});

test('truncated, corrupted and half-written checkpoints are skipped, newest first, for the previous valid one', async () => {
  const run = tempRun();
  for (const step of [2, 4, 6, 8, 10]) await saveCheckpoint(run, input(step));
  truncateSync(ckpt(run, 10, 'tensors.bin'), 10);
  const bin = readFileSync(ckpt(run, 8, 'tensors.bin'));
  bin[5] ^= 0xff; // one flipped byte: same size, so only the checksum sees it
  writeFileSync(ckpt(run, 8, 'tensors.bin'), bin);
  const index = readFileSync(ckpt(run, 6, 'index.json'));
  index[index.length - 3] ^= 0x01;
  writeFileSync(ckpt(run, 6, 'index.json'), index);
  rmSync(ckpt(run, 4, 'meta.json')); // a crash before meta.json
  mkdirSync(ckpt(run, 12)); // an empty folder
  mkdirSync(join(run, 'checkpoints', '.tmp-step-14-999')); // a crash mid-write: not even listed
  const skipped: string[] = [];
  const loaded = loadLatestValidCheckpoint(run, {
    onSkip: (info: CheckpointInfo, reason: string) => {
      assert.equal(info.valid, false);
      assert.equal(info.reason, reason);
      skipped.push(`${info.step}: ${reason}`);
    },
  });
  assert.equal(loaded?.meta.step, 2);
  assert.deepEqual(skipped, [
    '12: no meta.json (incomplete write)',
    // 8 floats (32 bytes), 3 floats (12) padded to 48, then 2 ints: 56 bytes.
    '10: tensors.bin has 10 bytes, expected 56 (truncated?)',
    '8: tensors.bin checksum mismatch (corrupted)',
    '6: index.json checksum mismatch (corrupted)',
    '4: no meta.json (incomplete write)',
  ]);
  // The cheap listing sees truncation and missing files but not flipped bits; the full one does.
  const validity = (full: boolean) => listCheckpoints(run, { full }).map((c) => `${c.step}:${c.valid ? 'ok' : 'bad'}`);
  assert.deepEqual(validity(false), ['2:ok', '4:bad', '6:ok', '8:ok', '10:bad', '12:bad']);
  assert.deepEqual(validity(true), ['2:ok', '4:bad', '6:bad', '8:bad', '10:bad', '12:bad']);
});

const eio = () => Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO', errno: -5, syscall: 'read' });

test('an I/O error or a read that ends early while verifying the newest checkpoint skips it, named with the error', async () => {
  const run = tempRun();
  for (const step of [2, 4, 6]) await saveCheckpoint(run, input(step));
  // tensors.bin reads of step-6 fail with EIO, of step-4 come back empty (the file ended early).
  const failing = new Map<number, FileReader>([
    [6, () => { throw eio(); }],
    [4, () => 0],
  ]);
  let step = 6;
  const skipped: string[] = [];
  const loaded = loadLatestValidCheckpoint(run, {
    onSkip: (info, reason) => {
      skipped.push(`${info.step}: ${reason}`);
      step = info.step - 2;
    },
    read: (fd, into, offset, length, position) => (failing.get(step) ?? readSync)(fd, into, offset, length, position),
  });
  assert.equal(loaded?.meta.step, 2);
  assert.deepEqual(skipped, [
    '6: tensors.bin is unreadable: EIO: i/o error, read',
    '4: tensors.bin ended early (truncated while being read?)',
  ]);
  assert.deepEqual([...loaded.readTensor('params/b').data], [1, 2, 3]);
  // With no readable checkpoint left, the error names each one's reason.
  assert.throws(
    () => loadLatestValidCheckpoint(run, { read: () => { throw eio(); } }),
    (err: unknown) =>
      err instanceof SoapTrainError && err.exitCode === 2 && /no valid checkpoint among 3 \(step-6: tensors\.bin is unreadable: EIO.*step-2: tensors\.bin is unreadable: EIO/.test(err.oneLine()),
  );
});

test('an unreadable meta.json is skipped too; a bug in the reader is not swallowed', async () => {
  const run = tempRun();
  for (const step of [2, 4]) await saveCheckpoint(run, input(step));
  // A directory in place of the file reads as EISDIR: deterministic, even as root.
  rmSync(ckpt(run, 4, 'meta.json'));
  mkdirSync(ckpt(run, 4, 'meta.json'));
  const reasons: string[] = [];
  assert.equal(loadLatestValidCheckpoint(run, (_info, reason) => reasons.push(reason))?.meta.step, 2);
  assert.deepEqual(reasons, ['meta.json is unreadable: EISDIR: illegal operation on a directory, read']);
  assert.throws(() => loadLatestValidCheckpoint(run, { read: () => { throw new TypeError('a bug'); } }), TypeError);
});

test('a torn or foreign meta.json is skipped with its reason', async () => {
  const run = tempRun();
  for (const step of [1, 2, 3]) await saveCheckpoint(run, input(step));
  writeFileSync(ckpt(run, 3, 'meta.json'), '{"format_version": 1, "st');
  const meta2 = JSON.parse(readFileSync(ckpt(run, 2, 'meta.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(ckpt(run, 2, 'meta.json'), JSON.stringify({ ...meta2, format_version: 99 }));
  const reasons: string[] = [];
  assert.equal(loadLatestValidCheckpoint(run, (_info, reason) => reasons.push(reason))?.meta.step, 1);
  assert.deepEqual(reasons, ['meta.json is not valid JSON (torn write?)', 'unknown format_version 99 (this soap-train reads 1, 2)']);
});

test('no valid checkpoint is a bad-input error naming the run; no checkpoint at all is null', async () => {
  const run = tempRun();
  assert.equal(loadLatestValidCheckpoint(run), null);
  await saveCheckpoint(run, input(2));
  rmSync(ckpt(run, 2, 'index.json'));
  assert.throws(
    () => loadLatestValidCheckpoint(run),
    (err: unknown) =>
      err instanceof SoapTrainError &&
      err.exitCode === 2 &&
      err.oneLine().startsWith(`${join(run, 'checkpoints')}: no valid checkpoint among 1 (step-2: index.json is missing)`),
  );
});

test('saving a step that already has a valid checkpoint keeps it; an invalid one is replaced', async () => {
  const run = tempRun();
  await saveCheckpoint(run, input(2));
  const again = await saveCheckpoint(run, input(2));
  assert.equal(again.reused, true);
  truncateSync(ckpt(run, 2, 'tensors.bin'), 3);
  const replaced = await saveCheckpoint(run, input(2));
  assert.equal(replaced.reused, false);
  assert.equal(loadLatestValidCheckpoint(run)?.meta.step, 2);
  assert.deepEqual(readdirSync(join(run, 'checkpoints')), ['step-2'], 'the invalid folder went through .trash and is gone');
});

test('prune keeps the newest k plus every keep_every step, and clears temp folders', async () => {
  const run = tempRun();
  for (const step of [1, 2, 3, 4, 5, 6, 7, 8]) await saveCheckpoint(run, input(step));
  mkdirSync(join(run, 'checkpoints', '.tmp-step-9-1'));
  mkdirSync(join(run, 'checkpoints', '.trash-step-0-1'));
  const removed = pruneCheckpoints(run, { keep: 2, keepEvery: 3 });
  assert.deepEqual(removed, [1, 2, 4, 5].map((s) => ckpt(run, s)));
  assert.deepEqual(listCheckpoints(run, { full: true }).map((c) => c.step), [3, 6, 7, 8]);
  assert.deepEqual(readdirSync(join(run, 'checkpoints')).sort(), ['step-3', 'step-6', 'step-7', 'step-8']);
});

test('prune never removes the newest valid checkpoint, counts only valid ones, and refuses keep < 2', async () => {
  const run = tempRun();
  for (const step of [1, 2, 3, 4]) await saveCheckpoint(run, input(step));
  truncateSync(ckpt(run, 4, 'tensors.bin'), 1); // newer but invalid: kept as evidence
  rmSync(ckpt(run, 1, 'meta.json')); // older and invalid: removed
  pruneCheckpoints(run, { keep: 2 });
  assert.deepEqual(listCheckpoints(run).map((c) => `${c.step}:${c.valid}`), ['2:true', '3:true', '4:false']);
  assert.throws(
    () => pruneCheckpoints(run, { keep: 1 }),
    (err: unknown) => err instanceof SoapTrainError && err.exitCode === 2 && err.field === 'checkpoint.keep',
  );
});

const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });

for (const [what, failAt] of [
  ['the tensors', 2],
  ['index.json', 5],
  ['meta.json', 6],
] as const) {
  test(`disk full while writing ${what}: the temp folder goes, the previous checkpoint stays valid and is named`, async () => {
    const run = tempRun();
    await saveCheckpoint(run, input(2));
    const before = readFileSync(ckpt(run, 2, 'tensors.bin'));
    let calls = 0;
    // Writes of a save: w (1), padding (2), b (3), count (4), index.json (5), meta.json (6).
    const failing = (_fd: number, _buf: Uint8Array) => {
      calls += 1;
      if (calls === failAt) throw enospc();
    };
    await assert.rejects(
      saveCheckpoint(run, input(4), { write: failing }),
      (err: unknown) =>
        err instanceof SoapTrainError &&
        err.exitCode === 1 &&
        err.message === `disk full while writing checkpoint step-4; the previous checkpoint ${ckpt(run, 2)} stays valid`,
    );
    assert.equal(calls, failAt);
    assert.deepEqual(readdirSync(join(run, 'checkpoints')), ['step-2']);
    assert.deepEqual(readFileSync(ckpt(run, 2, 'tensors.bin')), before);
    assert.equal(loadLatestValidCheckpoint(run)?.meta.step, 2);
  });
}

test('disk full on the very first checkpoint says there is no earlier one; other errors pass through', async () => {
  const run = tempRun();
  await assert.rejects(
    saveCheckpoint(run, input(2), { write: () => { throw enospc(); } }),
    (err: unknown) => err instanceof SoapTrainError && err.exitCode === 1 && /there is no earlier checkpoint/.test(err.message),
  );
  const broken = { ...input(4), tensors: [['params/x', { dtype: 'float32', shape: [3], data: new Float32Array(2) }]] as Array<[string, TensorEntry]> };
  await assert.rejects(saveCheckpoint(run, broken), /2 values for shape \[3\]/);
  assert.deepEqual(readdirSync(join(run, 'checkpoints')), []);
  assert.ok(!existsSync(ckpt(run, 4)));
});
