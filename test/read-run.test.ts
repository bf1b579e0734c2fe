/**
 * The shared run reader (src/run/read-run.ts): hand-written run directories with known rows
 * (duplicate steps from a resume, a torn last line, a corrupt middle line, a stale summary), and
 * configDiff on hand-made configs.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SoapTrainError } from '../src/errors.js';
import { configDiff, readRun, readRuns } from '../src/run/read-run.js';
import { tempDirs } from './helpers/tmp.js';

const tmp = tempDirs('read-run-');

const CONFIG_YAML = `backend: auto
optimizer:
  type: soap
  lr: 0.003
  betas: [0.95, 0.95]
  eps: 1e-8
train:
  steps: 8
  log_interval: 2
`;

function metricsLine(step: number, wall: number, loss = 5 - step / 10): string {
  return JSON.stringify({
    step, tokens: step * 100, loss, loss_with_z: loss, lr: 0.003, grad_norm: 1, wall_s: wall, tokens_per_s: 1000,
    time_ms: { data_ms: 1, fwd_bwd_ms: 2, optim_ms: 3, refresh_ms: 0 },
    interval: { steps: 2, data_ms: 2, fwd_bwd_ms: 4, optim_ms: 6, refresh_ms: 0 },
  });
}
const evalLine = (step: number, val: number, wall: number) => JSON.stringify({ step, tokens: step * 100, val_loss: val, wall_s: wall, eval_s: 0.5 });

function makeRun(files: Record<string, string>): string {
  const dir = join(tmp(), 'my-run');
  mkdirSync(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

const summaryJson = (status: string, steps: number) => JSON.stringify({ status, steps, final_val_loss: 4.2, optimizer: 'soap' });

test('readRun keeps the last row per step, sorted, and takes the clock from the last row', () => {
  // A resume that rewrote step 4 (wall 2.5 replaces 2.0) and rows out of order.
  const dir = makeRun({
    'config.yaml': CONFIG_YAML,
    'metrics.jsonl': [metricsLine(2, 1.0), metricsLine(4, 2.0, 9), metricsLine(6, 3.1), metricsLine(4, 2.5), metricsLine(8, 4.0)].join('\n') + '\n',
    'eval.jsonl': [evalLine(4, 4.9, 2.5), evalLine(8, 4.4, 4.0)].join('\n') + '\n',
    'summary.json': summaryJson('completed', 8),
  });
  const run = readRun(dir);
  assert.equal(run.dir, dir);
  assert.equal(run.name, 'my-run');
  assert.equal(run.optimizer, 'soap');
  assert.equal(run.plannedSteps, 8);
  assert.deepEqual(run.metrics.map((r) => r.step), [2, 4, 6, 8]);
  assert.equal(run.metrics[1].wall_s, 2.5);
  assert.equal(run.metrics[1].loss, 5 - 0.4);
  assert.deepEqual(run.evals.map((r) => [r.step, r.val_loss]), [[4, 4.9], [8, 4.4]]);
  assert.equal(run.status, 'completed');
  assert.equal(run.lastStep, 8);
  assert.equal(run.trainSeconds, 4.0);
  assert.equal(run.secondsPerStep, 0.5);
  assert.equal(run.finalValLoss, 4.4);
  assert.deepEqual(run.summary, JSON.parse(summaryJson('completed', 8)));
  // YAML scalars come back typed (1e-8 is a number, the betas an array).
  assert.equal((run.config.optimizer as Record<string, unknown>).eps, 1e-8);
  assert.deepEqual((run.config.optimizer as Record<string, unknown>).betas, [0.95, 0.95]);
});

test('a run being written: torn last line skipped, no summary → in_progress', () => {
  const torn = metricsLine(6, 3.0).slice(0, 40);
  const dir = makeRun({
    'config.yaml': CONFIG_YAML,
    'metrics.jsonl': `${metricsLine(2, 1.0)}\n${metricsLine(4, 2.0)}\n${torn}`,
    'eval.jsonl': `${evalLine(4, 4.9, 2.0)}\n`,
  });
  const run = readRun(dir);
  assert.deepEqual(run.metrics.map((r) => r.step), [2, 4]);
  assert.equal(run.status, 'in_progress');
  assert.equal(run.summary, null);
  assert.equal(run.lastStep, 4);
  assert.equal(run.trainSeconds, 2.0);
  assert.equal(run.secondsPerStep, 0.5);
});

test('a summary from an earlier, interrupted attempt is stale once rows pass its step', () => {
  const dir = makeRun({
    'config.yaml': CONFIG_YAML,
    'metrics.jsonl': [2, 4, 6].map((s) => metricsLine(s, s / 2)).join('\n') + '\n',
    'summary.json': summaryJson('interrupted', 4),
  });
  assert.equal(readRun(dir).status, 'in_progress');
  // …and at its step it is the run's status.
  const stopped = makeRun({
    'config.yaml': CONFIG_YAML,
    'metrics.jsonl': [2, 4].map((s) => metricsLine(s, s / 2)).join('\n') + '\n',
    'summary.json': summaryJson('interrupted', 4),
  });
  assert.equal(readRun(stopped).status, 'interrupted');
});

test('a run with no rows yet: lastStep 0, no clock rate, no final loss', () => {
  const run = readRun(makeRun({ 'config.yaml': CONFIG_YAML }));
  assert.equal(run.lastStep, 0);
  assert.equal(run.trainSeconds, 0);
  assert.equal(run.secondsPerStep, null);
  assert.equal(run.finalValLoss, null);
  assert.deepEqual(run.metrics, []);
  assert.equal(run.status, 'in_progress');
});

function assertBadInput(fn: () => unknown, file: RegExp, field?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SoapTrainError, `expected SoapTrainError, got ${String(err)}`);
    assert.equal(err.exitCode, 2);
    assert.match(err.file ?? '', file);
    if (field !== undefined) assert.equal(err.field, field);
    return true;
  });
}

test('bad input names the file (and line): missing dir, missing config, corrupt middle line', () => {
  assertBadInput(() => readRun(join(tmp(), 'nope')), /nope$/);
  assertBadInput(() => readRun(makeRun({ 'metrics.jsonl': '' })), /config\.yaml$/);
  const corrupt = makeRun({
    'config.yaml': CONFIG_YAML,
    'metrics.jsonl': `${metricsLine(2, 1)}\n{"step": 4, "loss":\n${metricsLine(6, 3)}\n`,
  });
  assertBadInput(() => readRun(corrupt), /metrics\.jsonl$/, 'line 2');
  const noStep = makeRun({ 'config.yaml': CONFIG_YAML, 'eval.jsonl': `{"val_loss": 4}\n${evalLine(4, 4, 1)}\n` });
  assertBadInput(() => readRun(noStep), /eval\.jsonl$/, 'line 1');
  assertBadInput(() => readRun(makeRun({ 'config.yaml': 'train:\n  steps: 8\n' })), /config\.yaml$/, 'optimizer.type');
  assertBadInput(() => readRuns([makeRun({ 'config.yaml': CONFIG_YAML }), join(tmp(), 'gone')]), /gone$/);
});

test('configDiff lists differing dotted leaves, sorted, arrays by content, missing keys as undefined', () => {
  const a = { optimizer: { type: 'soap', lr: 0.003, betas: [0.95, 0.95] }, train: { steps: 8, seed: 0 }, backend: 'auto' };
  const b = { optimizer: { type: 'soap', lr: 0.001, betas: [0.95, 0.99] }, train: { steps: 8, seed: 0, max_wall_s: 60 } };
  assert.deepEqual(configDiff(a, b), [
    { key: 'backend', a: 'auto', b: undefined },
    { key: 'optimizer.betas', a: [0.95, 0.95], b: [0.95, 0.99] },
    { key: 'optimizer.lr', a: 0.003, b: 0.001 },
    { key: 'train.max_wall_s', a: undefined, b: 60 },
  ]);
  assert.deepEqual(configDiff(a, structuredClone(a)), []);
});
