/**
 * Exact resume: a run interrupted (by a step limit, SIGINT or SIGKILL at any crash point) and
 * resumed must end with bit-identical parameters and optimizer state (the SHA-256 of the final
 * checkpoint's tensors.bin) and the same losses in metrics.jsonl as an uninterrupted run.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { findOptimizer, OPTIMIZERS } from '../src/optim/registry.js';
import { shortRunOptions } from './helpers/optimizers.js';
import { BIN, soapTrain, tinyExperiment, type TinyExperiment } from './helpers/tiny-run.js';

/** A tiny experiment with this optimizer at lr 1e-2 (refreshing within 8 steps) and a checkpoint every 2 steps. */
function experiment(optimizer: string): TinyExperiment {
  const entry = findOptimizer(optimizer);
  assert.ok(entry, `no optimizer '${optimizer}' in the registry`);
  const section = JSON.stringify({ type: optimizer, lr: 1e-2, ...shortRunOptions(entry) });
  return tinyExperiment('checkpoint: {interval: 2, keep: 2}', `optimizer: ${section}`);
}

function finalState(exp: TinyExperiment, name: string, step = 8): { hash: string; losses: Map<number, number> } {
  const run = join(exp.dir, 'runs', name);
  const hash = createHash('sha256').update(readFileSync(join(run, 'checkpoints', `step-${step}`, 'tensors.bin'))).digest('hex');
  const losses = new Map<number, number>();
  for (const line of readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n')) {
    const row = JSON.parse(line) as { step: number; loss: number };
    assert.ok(!losses.has(row.step), `${name}: duplicate metrics row for step ${row.step}`);
    losses.set(row.step, row.loss);
  }
  return { hash, losses };
}

function assertSameRun(reference: ReturnType<typeof finalState>, resumed: ReturnType<typeof finalState>, label: string): void {
  assert.equal(resumed.hash, reference.hash, `${label}: parameters/optimizer state differ`);
  for (const [step, loss] of reference.losses) assert.equal(resumed.losses.get(step), loss, `${label}: loss at step ${step}`);
}

function run(exp: TinyExperiment, args: string[], env: Record<string, string> = {}) {
  return soapTrain(['--config', exp.config, '--set', 'train.steps=8', '--set', 'train.log_interval=1', ...args], exp.dir, 120_000, env);
}

for (const backend of ['cpu', 'wasm']) {
  for (const { name: optimizer } of OPTIMIZERS) {
    test(`${optimizer} on ${backend}: 5 steps + resume to 8 equals 8 steps, bit for bit`, () => {
      const exp = experiment(optimizer);
      const b = ['--set', `backend=${backend}`];
      assert.equal(run(exp, ['--name', 'straight', ...b]).status, 0);
      const first = soapTrain(['--config', exp.config, '--set', 'train.steps=5', '--set', 'train.log_interval=1', '--name', 'split', ...b], exp.dir);
      assert.equal(first.status, 0, first.stderr);
      const second = run(exp, ['--name', 'split', '--resume', ...b]);
      assert.equal(second.status, 0, second.stderr);
      assert.match(second.stderr, /resuming .*split from step 5/);
      assertSameRun(finalState(exp, 'straight'), finalState(exp, 'split'), `${optimizer}/${backend}`);
    });
  }
}

test('SIGKILL at seeded random crash points (steps and checkpoint writes): every resumed run is identical', () => {
  const exp = experiment('soap');
  const countFile = join(exp.dir, 'crash-points');
  const ref = run(exp, ['--name', 'ref'], { SOAP_TRAIN_CRASH_COUNT_FILE: countFile });
  assert.equal(ref.status, 0, ref.stderr);
  const total = Number(readFileSync(countFile, 'utf8'));
  assert.ok(total > 30, `a run passes many crash points (${total})`);
  const reference = finalState(exp, 'ref');
  let seed = 12345;
  const nextPoint = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return 1 + Math.floor((seed / 2 ** 31) * total); // high bits: the LCG's low bits cycle
  };
  // Distinct points; SOAP_TRAIN_CRASH_TRIALS raises the count for a longer sweep outside CI.
  const trials = Math.min(total, Number(process.env.SOAP_TRAIN_CRASH_TRIALS ?? 8));
  const chosen = new Set<number>();
  while (chosen.size < trials) chosen.add(nextPoint());
  const points = [...chosen];
  for (const [i, point] of points.entries()) {
    const name = `kill${i}`;
    const killed = run(exp, ['--name', name], { SOAP_TRAIN_CRASH_AT: String(point) });
    assert.equal(killed.signal, 'SIGKILL', `crash point ${point} of ${total} was reached`);
    const resumed = run(exp, ['--name', name, '--resume']);
    assert.equal(resumed.status, 0, `resume after crash point ${point}: ${resumed.stderr}`);
    assertSameRun(reference, finalState(exp, name), `crash point ${point}`);
  }
  process.stdout.write(`# crash points tried: ${points.join(', ')} of ${total}; mismatches: 0\n`);
});

test('Ctrl-C finishes the step, writes a checkpoint and exits 130; the resumed run is identical', async () => {
  const exp = experiment('adamw');
  const steps = ['--set', 'train.steps=40', '--set', 'train.log_interval=1'];
  assert.equal(soapTrain(['--config', exp.config, ...steps, '--name', 'ref'], exp.dir).status, 0);
  const child = spawn(process.execPath, [BIN, '--config', exp.config, ...steps, '--name', 'ctrlc'], { cwd: exp.dir });
  let stderr = '';
  let sent = false;
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (!sent && /step 3\/40/.test(stderr)) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  const code = await new Promise<number | null>((done) => child.on('exit', (c) => done(c)));
  assert.equal(code, 130, stderr);
  const summary = JSON.parse(readFileSync(join(exp.dir, 'runs', 'ctrlc', 'summary.json'), 'utf8')) as { status: string; steps: number };
  assert.equal(summary.status, 'interrupted');
  assert.ok(summary.steps >= 3 && summary.steps < 40, `stopped at step ${summary.steps}`);
  const resumed = soapTrain(['--config', exp.config, ...steps, '--name', 'ctrlc', '--resume'], exp.dir);
  assert.equal(resumed.status, 0, resumed.stderr);
  assertSameRun(finalState(exp, 'ref', 40), finalState(exp, 'ctrlc', 40), 'ctrl-c');
});

test('resuming with a different model or optimizer is refused, naming the fields; more steps is fine', () => {
  const exp = experiment('adamw');
  assert.equal(run(exp, ['--name', 'r', '--set', 'train.steps=4']).status, 0);
  const bad = run(exp, ['--name', 'r', '--resume', '--set', 'model.d_model=32', '--set', 'optimizer.lr=0.5']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /config differs from the run's in model\.d_model, optimizer\.lr/);
  const more = soapTrain(['resume', join(exp.dir, 'runs', 'r'), '--set', 'train.steps=6'], exp.dir);
  assert.equal(more.status, 0, more.stderr);
  assert.match(more.stderr, /from step 4/);
});

test('a second process on the same run directory is refused', async () => {
  const exp = experiment('adamw');
  const child = spawn(process.execPath, [BIN, '--config', exp.config, '--set', 'train.steps=400', '--name', 'busy'], { cwd: exp.dir });
  let stderr = '';
  const started = new Promise<void>((done) =>
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (/step \d+\/400/.test(stderr)) done();
    }),
  );
  await started;
  const second = run(exp, ['--name', 'busy', '--resume']);
  child.kill('SIGKILL');
  await new Promise((done) => child.on('exit', done));
  assert.equal(second.status, 2, second.stderr);
  assert.match(second.stderr, /busy: in use by pid \d+/);
});

test('non-finite losses: steps are skipped, then the run stops with exit 1 and the checkpoint intact', () => {
  const exp = experiment('adamw');
  // A learning rate of 1e38 overflows the weights on the first update: every later loss is NaN.
  const r = run(exp, ['--name', 'nan', '--set', 'optimizer.lr=1e38', '--set', 'train.max_bad_steps=3', '--set', 'checkpoint.interval=1']);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /3 non-finite steps in a row/);
  const log = readFileSync(join(exp.dir, 'runs', 'nan', 'log.jsonl'), 'utf8');
  assert.equal(log.match(/"event":"non_finite"/g)?.length, 3);
  const summary = JSON.parse(readFileSync(join(exp.dir, 'runs', 'nan', 'summary.json'), 'utf8')) as { status: string };
  assert.equal(summary.status, 'failed');
});
