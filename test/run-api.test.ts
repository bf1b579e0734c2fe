/**
 * The run lifecycle as a library call: `runExperiment` starts, aborts (through its signal) and
 * resumes a run in-process, and an interrupted-then-resumed run equals an uninterrupted one
 * bit for bit. Every path out, error or not, releases the shards, the lock and the tensors.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig, loadRunConfig, parseOverride, runExperiment, SoapTrainError, tf, type RunEvent } from '../src/index.js';
import { tinyExperiment } from './helpers/tiny-run.js';

const exp = tinyExperiment('checkpoint: {interval: 0, keep: 2}', 'optimizer: {type: soap, lr: 1.0e-2, precondition_frequency: 3}');
const config = (...sets: string[]) => loadConfig(exp.config, ['train.steps=8', 'train.log_interval=1', ...sets].map(parseOverride));
const runDir = (name: string) => join(exp.dir, 'runs', name);

function tensorsHash(dir: string, step: number): string {
  return createHash('sha256').update(readFileSync(join(dir, 'checkpoints', `step-${step}`, 'tensors.bin'))).digest('hex');
}

function losses(dir: string): Array<[number, number]> {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { step: number; loss: number })
    .map((r) => [r.step, r.loss]);
}

/** File descriptors this process holds (Linux). */
const openFds = () => readdirSync('/proc/self/fd').length;

test('runExperiment: aborted through its signal at step 3, resumed to 8, equals 8 straight steps', async () => {
  const tensorsBefore = tf.memory().numTensors;
  const straight = await runExperiment(config(), { runDir: runDir('straight') });
  assert.equal(straight.status, 'completed');
  assert.equal(straight.steps, 8);
  assert.equal(tf.memory().numTensors, tensorsBefore, 'a finished run leaves no tensors behind');

  const stop = new AbortController();
  const events: RunEvent['type'][] = [];
  const first = await runExperiment(config(), {
    runDir: runDir('split'),
    signal: stop.signal,
    onProgress: (e) => {
      // Host-work progress depends on timing (it reports only batches that take long): not asserted.
      if (e.type !== 'refresh') events.push(e.type);
      if (e.type === 'step' && e.step === 3) stop.abort('test');
    },
  });
  assert.equal(first.status, 'interrupted');
  assert.equal(first.steps, 3, 'the step in flight finishes, then the run stops');
  assert.deepEqual(events, ['start', 'step', 'step', 'step', 'eval', 'checkpoint', 'end']); // eval_interval 3
  assert.ok(existsSync(join(runDir('split'), 'checkpoints', 'step-3', 'meta.json')), 'an aborted run checkpoints');
  assert.match(readFileSync(join(runDir('split'), 'log.jsonl'), 'utf8'), /"event":"signal","reason":"test"/);

  const second = await runExperiment(loadRunConfig(runDir('split'), [parseOverride('train.steps=8')]), { runDir: runDir('split'), resume: true });
  assert.equal(second.status, 'completed');
  assert.equal(second.resumed_from_step, 3);
  assert.deepEqual(losses(runDir('split')), losses(runDir('straight')));
  assert.equal(tensorsHash(runDir('split'), 8), tensorsHash(runDir('straight'), 8), 'parameters and optimizer state bit for bit');
  // The summary continues the run's progress rather than starting over.
  assert.equal(second.final_val_loss, straight.final_val_loss);
  assert.equal(second.tokens, straight.tokens);
  assert.equal(tf.memory().numTensors, tensorsBefore);
});

test('runExperiment releases the shards and the lock when it refuses to start', async () => {
  const fds = openFds();
  // An existing run directory without resume: refused after the shards were opened.
  await assert.rejects(runExperiment(config(), { runDir: runDir('straight') }), (err: unknown) => {
    assert.ok(err instanceof SoapTrainError);
    assert.match(err.oneLine(), /run directory already exists/);
    return true;
  });
  // A backend that cannot load here: refused after the shards were opened, before the run directory.
  await assert.rejects(runExperiment(config('backend=tensorflow'), { runDir: runDir('never') }), /backend tensorflow is not available/);
  assert.equal(existsSync(runDir('never')), false, 'nothing written');
  // A resumed config that changes the model: refused, and the lock is not left behind.
  await assert.rejects(runExperiment(config('model.d_model=32'), { runDir: runDir('straight'), resume: true }), /config differs from the run's in model.d_model/);
  assert.equal(existsSync(join(runDir('straight'), '.lock')), false);
  assert.equal(openFds(), fds, 'no file descriptor leaked');
});
