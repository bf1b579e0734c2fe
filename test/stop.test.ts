/**
 * Stopping within a bound: a stop request in the middle of a step's long host work abandons the
 * step when it would not finish within train.stop_grace_s, checkpoints the last finished step,
 * exits 130, and the resumed run equals an uninterrupted one. Time limits stop with a checkpoint
 * and exit 75 (resume me); checkpoint.interval_s writes checkpoints by the clock.
 *
 * The long step is made deterministic with a test-only delay inside the worker's job
 * (SOAP_TRAIN_TEST_JOB_DELAY_MS), far longer than the grace period, so "exits within the bound"
 * means "did not wait for the job".
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { parseTimeLimit } from '../src/config/time-limit.js';
import { BIN, soapTrain, tinyExperiment } from './helpers/tiny-run.js';

const SOAP = 'optimizer: {type: soap, lr: 1.0e-2, precondition_frequency: 3}';
const JOB_DELAY_MS = 60_000;

function losses(runDir: string): Array<[number, number]> {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; loss: number })
    .map((r) => [r.step, r.loss]);
}

function events(runDir: string): Array<Record<string, unknown>> {
  return readFileSync(join(runDir, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * Runs the CLI on `dir`/tiny.yaml with `args` and `env`, sends SIGTERM `times` times at once as
 * soon as it announces its run (start-up, before step 1), and waits for it to exit.
 */
async function stopAtStartUp(dir: string, args: string[], env: Record<string, string>, times = 1): Promise<{ code: number | null; stderr: string; waitedS: number }> {
  const child = spawn(process.execPath, [BIN, '--config', join(dir, 'tiny.yaml'), ...args], { cwd: dir, env: { ...process.env, ...env } });
  let stderr = '';
  let signalledAt = 0;
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (!signalledAt && /soap-train: run /.test(stderr)) {
      signalledAt = performance.now();
      for (let i = 0; i < times; i++) child.kill('SIGTERM');
    }
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { code, stderr, waitedS: (performance.now() - signalledAt) / 1000 };
}

test('parseTimeLimit reads Slurm time formats', () => {
  assert.equal(parseTimeLimit('90'), 5400);
  assert.equal(parseTimeLimit('30:00'), 1800);
  assert.equal(parseTimeLimit('12:00:00'), 43200);
  assert.equal(parseTimeLimit('1-12'), 129600);
  assert.equal(parseTimeLimit('1-12:30'), 131400);
  assert.equal(parseTimeLimit('1-12:00:05'), 129605);
  assert.throws(() => parseTimeLimit('soon'), /Slurm's format/);
  assert.throws(() => parseTimeLimit('0'), /positive/);
});

test('SIGTERM (delivered twice) during a step whose host work outlasts stop_grace_s: the step is abandoned, exit 130, resume equals a straight run', async () => {
  const exp = tinyExperiment('checkpoint: {interval: 2, keep: 3}', SOAP);
  const sets = ['--set', 'train.steps=6', '--set', 'train.log_interval=1', '--set', 'train.stop_grace_s=3'];
  const straight = soapTrain(['--config', exp.config, ...sets, '--name', 'straight'], exp.dir);
  assert.equal(straight.status, 0, straight.stderr);

  // Every host job (SOAP's first bases at step 1) now takes a minute.
  // Twice at once, as on a Slurm preemption (the job's processes and the batch script's forward):
  // the duplicate must not turn the graceful stop into an exit without a checkpoint.
  const { code, stderr, waitedS } = await stopAtStartUp(exp.dir, [...sets, '--name', 'stopped'], { SOAP_TRAIN_TEST_JOB_DELAY_MS: String(JOB_DELAY_MS) }, 2);
  assert.equal(code, 130, stderr);
  assert.ok(waitedS < JOB_DELAY_MS / 1000, `exited after ${waitedS.toFixed(1)}s, without waiting for the ${JOB_DELAY_MS / 1000}s job`);
  const run = join(exp.dir, 'runs', 'stopped');
  const log = events(run);
  assert.ok(log.some((e) => e.event === 'stop_plan' && e.grace_s === 3), 'the decision is logged');
  assert.ok(log.some((e) => e.event === 'step_abandoned' && e.step === 1 && e.reason === 'signal'), 'the abandoned step is logged');
  assert.match(stderr, /step 1 abandoned/);
  const summary = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8')) as { status: string; steps: number };
  assert.deepEqual([summary.status, summary.steps], ['interrupted', 0]);
  assert.ok(existsSync(join(run, 'checkpoints', 'step-0', 'meta.json')), 'the last finished state is checkpointed');

  const resumed = soapTrain(['--config', exp.config, ...sets, '--name', 'stopped', '--resume'], exp.dir);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.deepEqual(losses(run), losses(join(exp.dir, 'runs', 'straight')));
});

test('SIGTERM during a step\'s parameter updates that cannot finish in stop_grace_s: abandoned at a parameter boundary, not checkpointed, resume equals a straight run', async () => {
  const exp = tinyExperiment('checkpoint: {interval: 1, keep: 3}');
  const sets = ['--set', 'train.steps=3', '--set', 'train.log_interval=1'];
  const straight = soapTrain(['--config', exp.config, ...sets, '--name', 'straight'], exp.dir);
  assert.equal(straight.status, 0, straight.stderr);

  // Every parameter's update now blocks the main thread for UPDATE_DELAY_MS, as slow device work
  // does: step 1's updates take ≈ 3 s × the parameter count. SIGTERM comes at start-up; the
  // budget (stop_grace_s 10 less the checkpoint reserve) runs out inside those updates.
  const UPDATE_DELAY_MS = 3000;
  const run = join(exp.dir, 'runs', 'stopped');
  const { code, stderr, waitedS } = await stopAtStartUp(exp.dir, [...sets, '--set', 'train.stop_grace_s=10', '--name', 'stopped'], {
    SOAP_TRAIN_TEST_UPDATE_DELAY_MS: String(UPDATE_DELAY_MS),
  });
  assert.equal(code, 130, stderr);
  const log = events(run);
  const abandoned = log.find((e) => e.event === 'step_abandoned');
  assert.ok(abandoned, stderr);
  assert.deepEqual([abandoned.step, abandoned.resume_from_step, abandoned.lost_steps], [1, -1, 1]);
  const [updated, of] = [abandoned.updated as number, abandoned.of as number];
  assert.ok(updated >= 1 && updated < of, `stopped between parameters: ${updated} of ${of}`);
  // It stopped at the boundary after the budget ran out, not after all the updates.
  assert.ok(waitedS < (of * UPDATE_DELAY_MS) / 1000, `exited after ${waitedS.toFixed(1)}s`);
  assert.ok(!existsSync(join(run, 'checkpoints')) || readdirSync(join(run, 'checkpoints')).length === 0, 'the half-updated state is not saved');
  assert.match(stderr, /abandoned during its updates/);

  // No checkpoint: the resume starts from the initial state, which the seed makes the same.
  const resumed = soapTrain(['--config', exp.config, ...sets, '--name', 'stopped', '--resume'], exp.dir);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.deepEqual(losses(run), losses(join(exp.dir, 'runs', 'straight')));
});

test('time limit: a step that would run past train.max_wall_s is not finished; checkpoint, exit 75, summary time_limit', () => {
  const exp = tinyExperiment('', SOAP);
  const r = soapTrain(['--config', exp.config, '--time-limit', '0:15', '--name', 'limited'], exp.dir, 120_000, {
    SOAP_TRAIN_TEST_JOB_DELAY_MS: String(JOB_DELAY_MS),
  });
  assert.equal(r.status, 75, r.stderr);
  const run = join(exp.dir, 'runs', 'limited');
  const summary = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8')) as { status: string };
  assert.equal(summary.status, 'time_limit');
  assert.ok(readdirSync(join(run, 'checkpoints')).some((d) => d.startsWith('step-')), 'a checkpoint to resume from');
  assert.equal((parseYaml(readFileSync(join(run, 'config.yaml'), 'utf8')) as { train: { max_wall_s: number } }).train.max_wall_s, 15, '--time-limit 0:15 is 15 s');
});

test('checkpoint.interval_s writes by the clock: a tiny interval checkpoints after every step', () => {
  const exp = tinyExperiment('checkpoint: {interval: 0, interval_s: 0.000001, keep: 100}');
  const r = soapTrain(['--config', exp.config, '--name', 'clock'], exp.dir);
  assert.equal(r.status, 0, r.stderr);
  const steps = readdirSync(join(exp.dir, 'runs', 'clock', 'checkpoints'))
    .filter((d) => d.startsWith('step-'))
    .map((d) => Number(d.slice(5)))
    .sort((a, b) => a - b);
  assert.deepEqual(steps, [1, 2, 3, 4, 5, 6]);
});
