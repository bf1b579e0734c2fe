/**
 * `soap-train sweep`: grid expansion and naming (pure), the plan and its validation, local runs
 * with a stub trainer (skip, resume, failure isolation, stop, -j), the Slurm and shell scripts
 * (bash -n, index → run mapping, TERM forwarding and requeue, with stub trainer and scontrol),
 * and one real tiny sweep end to end.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { parseOverride } from '../src/config/load.js';
import { SoapTrainError } from '../src/errors.js';
import { chooseRunDir } from '../src/run/run-dir.js';
import { bashQuote, sbatchLine, shellScript, slurmScript } from '../src/sweep/emit.js';
import { LocalSweep, trainArgs, type SweepEvent } from '../src/sweep/local.js';
import { axisParts, formatNumber, namePart } from '../src/sweep/naming.js';
import { buildPlan, expandSweep, readPlan, writePlan, type SweepPlan } from '../src/sweep/plan.js';
import { bestPerOptimizer, collectResults, defaultBaseline, formatSweepMarkdown } from '../src/sweep/results.js';
import { parseFractions, parseGridArg, readSweepFile, splitTopLevel, valueText, withCommandLine, type GridAxis } from '../src/sweep/spec.js';
import { REPO, soapTrain, tinyExperiment } from './helpers/tiny-run.js';
import { tempDirs } from './helpers/tmp.js';

const tmp = tempDirs('soap-sweep-');

/** An axis from literal values, with the texts a YAML file would give them. */
function axis(key: string, values: unknown[]): GridAxis {
  return { key, values: values.map((value) => ({ value, text: valueText(value) })) };
}

function throwsBadInput(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof SoapTrainError && err.exitCode === 2 && pattern.test(err.oneLine()));
}

// ---------------------------------------------------------------------------------------------
// Expansion and naming (pure)

test('numbers in names take their shortest faithful form', () => {
  const cases: Array<[number, string]> = [
    [0.003, '3e-3'],
    [0.01, '0.01'],
    [1e-4, '1e-4'],
    [3.5e-4, '3.5e-4'],
    [0.5, '0.5'],
    [0.95, '0.95'],
    [240, '240'],
    [1e6, '1000000'],
  ];
  for (const [n, text] of cases) {
    assert.equal(formatNumber(n), text, String(n));
    assert.equal(Number(text), n, `${text} reads back as ${n}`);
  }
  assert.equal(namePart('optimizer.lr', 'lr', 0.003), 'lr3e-3');
  assert.equal(namePart('optimizer.type', 'type', 'soap'), 'soap', 'a type key shows its value alone');
  assert.equal(namePart('optimizer.beta2', 'beta2', 0.99), 'beta2=0.99', 'a label ending in a digit is kept apart');
  assert.equal(namePart('optimizer.decay', 'decay', 'all'), 'decay=all', 'a word value is kept apart');
  assert.equal(namePart('optimizer.betas', 'betas', [0.9, 0.95]), 'betas0.9,0.95');
  assert.equal(namePart('optimizer', 'optimizer', { type: 'soap', lr: 0.003 }), 'soap,lr3e-3', 'a whole section shows its type and settings');
  // Whole sections on one axis show what tells them apart.
  const adamw = { type: 'adamw', lr: 0.003, eps: 1e-8 };
  assert.deepEqual(axisParts('optimizer', 'optimizer', [adamw, { type: 'soap', lr: 0.003, eps: 1e-8, precondition_frequency: 10 }]), ['adamw', 'soap']);
  assert.deepEqual(axisParts('optimizer', 'optimizer', [adamw, { ...adamw, lr: 0.01 }]), ['adamw,lr3e-3', 'adamw,lr0.01']);
  assert.deepEqual(axisParts('optimizer.lr', 'lr', [0.001, 0.01]), ['lr1e-3', 'lr0.01']);
});

test('the grid expands first axis outermost, then fractions, then seeds, with readable names', () => {
  const spec = { grid: [axis('optimizer.type', ['adamw', 'soap']), axis('optimizer.lr', [0.001, 0.003])], seeds: 2, fractions: [0.5, 1] };
  const runs = expandSweep(spec, 240);
  assert.equal(runs.length, 2 * 2 * 2 * 2);
  assert.deepEqual(runs.slice(0, 5).map((r) => r.name), ['adamw_lr1e-3_f0.5_s0', 'adamw_lr1e-3_f0.5_s1', 'adamw_lr1e-3_f1_s0', 'adamw_lr1e-3_f1_s1', 'adamw_lr3e-3_f0.5_s0']);
  assert.equal(runs.at(-1)!.name, 'soap_lr3e-3_f1_s1');
  assert.deepEqual(runs[2].set, ['optimizer.type=adamw', 'optimizer.lr=0.001', 'train.steps=240', 'train.seed=0']);
  assert.deepEqual(runs[1].set, ['optimizer.type=adamw', 'optimizer.lr=0.001', 'train.steps=120', 'train.seed=1']);
  // Every combination appears exactly once.
  assert.equal(new Set(runs.map((r) => r.set.join(' '))).size, runs.length);
  // Fractions round: 0.625 × 100 = 62.5 → 63 (Math.round), 0.875 × 100 = 87.5 → 88.
  assert.deepEqual(
    expandSweep({ grid: [], fractions: [0.5, 0.625, 0.75, 0.875, 1] }, 100).map((r) => [r.name, r.set[0]]),
    [['f0.5', 'train.steps=50'], ['f0.625', 'train.steps=63'], ['f0.75', 'train.steps=75'], ['f0.875', 'train.steps=88'], ['f1', 'train.steps=100']],
  );
  assert.deepEqual(expandSweep({ grid: [] }, 100), [{ name: 'base', set: [] }], 'no grid: one run of the base config');
});

test('names are stable, unique and folder-safe even when values only differ in unsafe characters', () => {
  const spec = { grid: [axis('data.train', ['a/b', 'a:b', 'a b']), axis('optimizer.eps', [1e-8]), axis('model.eps', [1e-6])], seeds: 1 };
  const runs = expandSweep(spec, 10);
  const names = runs.map((r) => r.name);
  assert.equal(new Set(names).size, names.length, `unique: ${names.join(' ')}`);
  for (const name of names) {
    assert.match(name, /^[A-Za-z0-9._=+,@-]+$/);
    assert.equal(chooseRunDir({ name, configFile: 'x.yaml' }).endsWith(name), true, 'accepted as a run name');
    // Clashing last segments (eps) use the whole key; the clashing values get a hash suffix.
    assert.match(name, /^train=a-b_optimizer\.eps1e-8_model\.eps1e-6_s0@[0-9a-f]{6}$/);
  }
  assert.deepEqual(expandSweep(spec, 10).map((r) => r.name), names, 'same inputs, same names');
  // A run's hash depends only on its own overrides: adding a value renames nobody else.
  const more = expandSweep({ ...spec, grid: [axis('data.train', ['a/b', 'a:b', 'a b', 'a*b']), ...spec.grid.slice(1)] }, 10);
  assert.deepEqual(more.slice(0, 3).map((r) => r.name), names);
});

test('conflicting or repeated sweep settings are bad input', () => {
  throwsBadInput(() => expandSweep({ grid: [axis('train.steps', [10, 20])], fractions: [0.5] }, 100), /fractions scale train\.steps/);
  throwsBadInput(() => expandSweep({ grid: [axis('train.seed', [1])], seeds: 2 }, 100), /seeds sets train\.seed/);
  throwsBadInput(() => expandSweep({ grid: [], fractions: [0.5, 0.501] }, 100), /fractions 0\.5 and 0\.501 both give train\.steps=50/);
  throwsBadInput(() => expandSweep({ grid: [], fractions: [0.001] }, 100), /less than one step/);
  throwsBadInput(() => parseGridArg('optimizer.lr=1e-3,0.001'), /same value twice \(1e-3 and 0\.001\)/);
  throwsBadInput(() => parseGridArg('optimizer.lr'), /KEY=V1,V2/);
  throwsBadInput(() => parseGridArg('optimizer.lr=1e-3,'), /KEY=V1,V2/);
  throwsBadInput(() => parseFractions('0.5,-1'), /positive numbers/);
  throwsBadInput(() => expandSweep({ grid: [], set: ['train.steps=10'], fractions: [0.5] }, 100), /--set train\.steps is also swept/);
  throwsBadInput(() => expandSweep({ grid: [axis('optimizer.lr', [0.1])], set: ['optimizer.lr=0.2'] }, 100), /--set optimizer\.lr is also swept/);
  throwsBadInput(() => withCommandLine({ base: '/x', grid: [] }, { grid: [parseGridArg('a.b=1'), parseGridArg('a.b=2')] }), /given twice/);
});

test('--grid values are split at top-level commas and parsed as --set parses them', () => {
  assert.deepEqual(splitTopLevel(`1,[2,3],{a: 1, b: 2},'x,y',"p,q"`), ['1', '[2,3]', '{a: 1, b: 2}', `'x,y'`, '"p,q"']);
  const betas = parseGridArg('optimizer.betas=[0.9,0.95],[0.95,0.95]');
  assert.equal(betas.key, 'optimizer.betas');
  assert.deepEqual(betas.values, [
    { value: [0.9, 0.95], text: '[0.9,0.95]' },
    { value: [0.95, 0.95], text: '[0.95,0.95]' },
  ]);
  const lr = parseGridArg('optimizer.lr=1e-3, 3e-3');
  assert.deepEqual(lr.values.map((v) => v.value), [0.001, 0.003]);
  assert.deepEqual(lr.values.map((v) => v.text), ['1e-3', '3e-3'], 'the text is kept as typed for --set');
  // Values from a YAML file get a --set text that parses back to the same value.
  for (const value of [0.003, 'soap', '1e-3', [0.9, 0.95], { type: 'soap', lr: 0.003 }, true, null, 'x: y', 'a b']) {
    assert.deepEqual(parseOverride(`k=${valueText(value)}`).value, value, JSON.stringify(value));
  }
});

test('a sweep file names its base relative to itself; the command line replaces its settings', () => {
  const dir = tmp();
  mkdirSync(join(dir, 'sweeps'));
  const file = join(dir, 'sweeps', 'lr.yaml');
  writeFileSync(file, 'base: ../configs/tiny.yaml\nsweep:\n  name: lr\n  grid:\n    optimizer.lr: [1.0e-3, 3.0e-3]\n    optimizer.betas: [[0.9, 0.95]]\n  seeds: 2\n');
  const spec = readSweepFile(file);
  assert.equal(spec.base, join(dir, 'configs', 'tiny.yaml'));
  assert.equal(spec.name, 'lr');
  assert.equal(spec.seeds, 2);
  assert.deepEqual(spec.grid.map((a) => [a.key, a.values.map((v) => v.value)]), [['optimizer.lr', [0.001, 0.003]], ['optimizer.betas', [[0.9, 0.95]]]]);
  const merged = withCommandLine(spec, { grid: [parseGridArg('optimizer.lr=1e-2'), parseGridArg('train.seq_len=64')], seeds: 3, set: ['train.eval_interval=5'] });
  assert.deepEqual(merged.set, ['train.eval_interval=5']);
  // Every run gets the fixed sets first; they are not part of the names.
  assert.deepEqual(expandSweep(merged, 10)[0], { name: 'lr0.01_betas0.9,0.95_seq_len64_s0', set: ['train.eval_interval=5', 'optimizer.lr=1e-2', 'optimizer.betas=[ 0.9, 0.95 ]', 'train.seq_len=64', 'train.seed=0'] });
  assert.deepEqual(merged.grid.map((a) => [a.key, a.values.map((v) => v.text)]), [['optimizer.lr', ['1e-2']], ['optimizer.betas', ['[ 0.9, 0.95 ]']], ['train.seq_len', ['64']]]);
  assert.equal(merged.seeds, 3);

  writeFileSync(file, 'base: x.yaml\nsweep:\n  grid: {}\n  seed: 2\n');
  throwsBadInput(() => readSweepFile(file), /lr\.yaml: sweep\.seed: unknown key/);
});

test('every run is validated with the config loader before anything is written', () => {
  const exp = tinyExperiment();
  const plan = buildPlan({ base: exp.config, grid: [parseGridArg('optimizer.type=adamw,soap')], fractions: [0.5, 1] }, 'ok');
  assert.deepEqual(plan.runs.map((r) => [r.name, r.optimizer, r.steps]), [['adamw_f0.5', 'adamw', 3], ['adamw_f1', 'adamw', 6], ['soap_f0.5', 'soap', 3], ['soap_f1', 'soap', 6]]);
  assert.equal(defaultBaseline(plan), 'adamw_f1', 'the AdamW run with the most steps');
  throwsBadInput(() => buildPlan({ base: exp.config, grid: [parseGridArg('optimizer.lrr=1')] }, 'x'), /optimizer\.lrr: unknown key/);
  throwsBadInput(() => buildPlan({ base: exp.config, grid: [parseGridArg('train.steps=4,many')] }, 'x'), /sweep run steps=many: .*train\.steps/);
  throwsBadInput(() => buildPlan({ base: exp.config, grid: [], baseline: 'nope' }, 'x'), /--baseline nope/);

  const r = soapTrain(['sweep', '--config', exp.config, '--grid', 'optimizer.lr=1e-3,1e-2', '--grid', 'optimizer.lrr=1', '--name', 'bad'], exp.dir);
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /optimizer\.lrr: unknown key/);
  assert.ok(!existsSync(join(exp.dir, 'runs')), 'nothing was created');
});

test('the example sweep file plans AdamW and SOAP over five lengths of the tiny config', () => {
  const spec = readSweepFile(join(REPO, 'examples', 'sweep-tiny.yaml'));
  const plan = buildPlan(spec, spec.name!);
  assert.equal(plan.name, 'tiny-optimizers');
  assert.equal(plan.base, join(REPO, 'configs', 'tiny.yaml'));
  // configs/tiny.yaml trains 240 steps: 0.5, 0.625, 0.75, 0.875, 1 of it.
  const steps = [120, 150, 180, 210, 240];
  assert.deepEqual(
    plan.runs.map((r) => [r.name, r.optimizer, r.steps]),
    ['adamw', 'soap'].flatMap((o) => ['0.5', '0.625', '0.75', '0.875', '1'].map((f, i) => [`${o}_f${f}`, o, steps[i]])),
  );
  assert.equal(defaultBaseline(plan), 'adamw_f1');
  const check = spawnSync('bash', ['-n', join(REPO, 'examples', 'shell-loop-sweep.sh')]);
  assert.equal(check.status, 0, 'the shell-loop example is valid bash');
});

test('the plan file reads back as written', () => {
  const dir = tmp();
  const plan: SweepPlan = { version: 1, name: 'p', base: '/c/base.yaml', baseline: 'a', runs: [{ name: 'a', set: ['optimizer.lr=1e-3', 'data.train="x y"'], optimizer: 'adamw', steps: 10 }] };
  writePlan(dir, plan);
  assert.deepEqual(readPlan(dir), plan);
  writeFileSync(join(dir, 'sweep.yaml'), 'version: 1\nname: p\nbase: /x\nruns: []\n');
  throwsBadInput(() => readPlan(dir), /sweep\.yaml: runs/);
});

// ---------------------------------------------------------------------------------------------
// Local runs with a stub trainer

/**
 * A stand-in for `soap-train train`: writes a small but readable run directory and exits as
 * STUB_BEHAVIOR ({run name: ok | fail | interrupt | hang | wait:<other run>}) says; appends
 * "<name> fresh|resume" to STUB_CALLS. Validation loss: 2 + 100·lr − steps/100 (hand-checkable).
 */
const STUB = `#!/usr/bin/env node
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
const args = process.argv.slice(2);
const value = (flag) => args[args.indexOf(flag) + 1];
if (args[0] !== 'train') { appendFileSync(process.env.STUB_CALLS, args.join(' ') + '\\n'); process.exit(0); }
const dir = value('--run-dir');
const name = basename(dir);
const sets = Object.fromEntries(args.flatMap((a, i) => (args[i - 1] === '--set' ? [a.split('=')] : [])));
const behavior = JSON.parse(process.env.STUB_BEHAVIOR || '{}')[name] || 'ok';
appendFileSync(process.env.STUB_CALLS, name + (existsSync(dir) ? ' resume' : ' fresh') + (args.includes('--resume') ? '' : ' NO-RESUME') + '\\n');
if (behavior === 'fail') { console.error('stub: boom in ' + name); process.exit(1); }
const lr = Number(sets['optimizer.lr'] ?? 0.003);
const steps = Number(sets['train.steps'] ?? 4);
const type = sets['optimizer.type'] ?? 'adamw';
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'config.yaml'), 'backend: cpu\\noptimizer: {type: ' + type + ', lr: ' + lr + '}\\ntrain: {steps: ' + steps + ', seed: ' + (sets['train.seed'] ?? 0) + '}\\n');
const loss = 2 + 100 * lr - steps / 100;
const summary = (status, at) => writeFileSync(join(dir, 'summary.json'), JSON.stringify({ status, steps: at, final_val_loss: loss, best_val_loss: loss, tokens_per_s: 1000, wall_clock_s: at, backend: 'cpu' }, null, 2));
const row = (s) => JSON.stringify({ step: s, tokens: 64 * s, loss, lr, grad_norm: 1, wall_s: s, tokens_per_s: 1000, time_ms: { data_ms: 0, fwd_bwd_ms: 1, optim_ms: 1, refresh_ms: 0 } }) + '\\n';
const evalRow = (s) => JSON.stringify({ step: s, tokens: 64 * s, val_loss: loss + (steps - s) / 10, wall_s: s, eval_s: 0.1 }) + '\\n';
if (behavior === 'interrupt') { appendFileSync(join(dir, 'metrics.jsonl'), row(1)); summary('interrupted', 1); process.exit(130); }
if (behavior === 'hang') {
  process.on('SIGTERM', () => { summary('interrupted', 0); process.exit(130); });
  setInterval(() => {}, 1000);
} else {
  const go = () => {
    for (let s = 1; s <= steps; s++) { appendFileSync(join(dir, 'metrics.jsonl'), row(s)); appendFileSync(join(dir, 'eval.jsonl'), evalRow(s)); }
    summary('completed', steps);
    process.exit(0);
  };
  if (behavior.startsWith('wait:')) {
    // Finishes only once the other run has started: proves two ran at once.
    const other = join(dir, '..', behavior.slice(5));
    const poll = setInterval(() => { if (existsSync(other)) { clearInterval(poll); go(); } }, 10);
  } else go();
}
`;

function stubTrainer(): { exe: string; calls: string } {
  const dir = tmp();
  const exe = join(dir, 'stub-train.mjs');
  writeFileSync(exe, STUB);
  chmodSync(exe, 0o755);
  return { exe, calls: join(dir, 'calls.txt') };
}

function readCalls(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];
}

function stubPlan(base: string, runs: Array<[string, string[]]>): SweepPlan {
  return { version: 1, name: 'stub', base, runs: runs.map(([name, set]) => ({ name, set, optimizer: set.includes('optimizer.type=soap') ? 'soap' : 'adamw', steps: 4 })) };
}

async function runStubSweep(plan: SweepPlan, dir: string, stub: { exe: string; calls: string }, behavior: Record<string, string>, jobs = 1, onEvent?: (e: SweepEvent, sweep: LocalSweep) => void) {
  process.env.STUB_CALLS = stub.calls;
  process.env.STUB_BEHAVIOR = JSON.stringify(behavior);
  const events: SweepEvent[] = [];
  const sweep: LocalSweep = new LocalSweep({ plan, dir, command: [process.execPath, stub.exe], jobs, onEvent: (e) => (events.push(e), onEvent?.(e, sweep)) });
  const outcomes = await sweep.run();
  return { outcomes, events };
}

test('a failed run is recorded and the others go on; a rerun skips completed runs and resumes the rest', async () => {
  const stub = stubTrainer();
  const dir = tmp();
  const plan = stubPlan('/cfg/base.yaml', [
    ['a', ['optimizer.lr=0.001']],
    ['b', ['optimizer.lr=0.002']],
    ['c', ['optimizer.lr=0.003']],
    ['d', ['optimizer.lr=0.004', 'optimizer.type=soap']],
  ]);
  const first = await runStubSweep(plan, dir, stub, { b: 'interrupt', c: 'fail' });
  assert.deepEqual(first.outcomes.map((o) => [o.name, o.status, o.exitCode]), [['a', 'completed', 0], ['b', 'interrupted', 130], ['c', 'failed', 1], ['d', 'completed', 0]]);
  assert.deepEqual(readCalls(stub.calls), ['a fresh', 'b fresh', 'c fresh', 'd fresh']);
  assert.match(readFileSync(join(dir, 'logs', 'c.log'), 'utf8'), /stub: boom in c/, "the child's stderr is in its log");
  assert.match(readFileSync(join(dir, 'logs', 'a.log'), 'utf8'), /^=== \S+ .* train --config \/cfg\/base\.yaml --set optimizer\.lr=0\.001 --run-dir \S+\/a --resume\n/);

  const results = collectResults(dir, plan, first.outcomes);
  assert.deepEqual(results.runs.map((r) => [r.name, r.status, r.steps]), [['a', 'completed', 4], ['b', 'interrupted', 1], ['c', 'failed', 0], ['d', 'completed', 4]]);
  assert.equal(results.runs[0].final_val_loss, 2 + 100 * 0.001 - 4 / 100);
  assert.deepEqual(results.best, { adamw: 'a', soap: 'd' });
  assert.equal(results.baseline, 'a', 'first AdamW run with the most steps');
  assert.ok(results.compare, results.compare_note ?? '');
  assert.equal(results.compare.baseline.run, 'a');
  const md = formatSweepMarkdown(results);
  assert.match(md, /\| c \| adamw \| `optimizer\.lr=0\.003` \| failed \| 0\/4 \|/);
  assert.match(md, /## Best run per optimizer\n\n\| optimizer \| run \| final val loss \| steps \|\n\|---\|---\|---\|---\|\n\| adamw \| a \| 2\.0600 \| 4 \|\n\| soap \| d \| 2\.3600 \| 4 \|/);
  assert.match(md, /## Failed runs\n\n- c: exit 1/);

  writeFileSync(stub.calls, '');
  const second = await runStubSweep(plan, dir, stub, {});
  assert.deepEqual(second.outcomes.map((o) => [o.name, o.status]), [['a', 'skipped'], ['b', 'completed'], ['c', 'completed'], ['d', 'skipped']]);
  assert.deepEqual(readCalls(stub.calls), ['b resume', 'c fresh'], 'only the unfinished runs ran; b continued in its folder');
  assert.deepEqual(collectResults(dir, plan, second.outcomes).runs.map((r) => r.status), ['completed', 'completed', 'completed', 'completed']);
});

test('-j 2 runs two at once and never more', async () => {
  const stub = stubTrainer();
  const dir = tmp();
  const plan = stubPlan('/cfg/base.yaml', [['a', []], ['b', []], ['c', []]]);
  // a finishes only after b has started: with one at a time this would never end.
  const { outcomes, events } = await runStubSweep(plan, dir, stub, { a: 'wait:b' }, 2);
  assert.deepEqual(outcomes.map((o) => o.status), ['completed', 'completed', 'completed']);
  const running = events.flatMap((e) => (e.type === 'start' || e.type === 'end' ? [e.running.length] : []));
  assert.equal(Math.max(...running), 2);
});

test('stop() forwards SIGTERM to running children and launches nothing more', async () => {
  const stub = stubTrainer();
  const dir = tmp();
  const plan = stubPlan('/cfg/base.yaml', [['a', []], ['b', []], ['c', []]]);
  const { outcomes } = await runStubSweep(plan, dir, stub, { a: 'hang' }, 1, (e, sweep) => {
    if (e.type === 'start') sweep.stop();
  });
  // The child either caught the TERM (exit 130) or got it before its handler: interrupted either way.
  assert.deepEqual(outcomes.map((o) => o.status), ['interrupted', 'not_started', 'not_started']);
  assert.ok(readCalls(stub.calls).length <= 1, 'only a was started');
  assert.ok(!existsSync(join(dir, 'b')) && !existsSync(join(dir, 'c')));
});

test('sweep from a sweep file on the command line: files, exit codes, rerun by directory', () => {
  const stub = stubTrainer();
  const exp = tinyExperiment();
  writeFileSync(join(exp.dir, 'sweep-lr.yaml'), 'base: tiny.yaml\nsweep:\n  name: lr\n  grid:\n    optimizer.lr: [1.0e-3, 2.0e-3]\n  fractions: [0.5, 1]\n');
  const env = { SOAP_TRAIN: stub.exe, STUB_CALLS: stub.calls, STUB_BEHAVIOR: '{}', PATH: `${dirname(process.execPath)}:${process.env.PATH}` };
  const r = soapTrain(['sweep', '--config', 'sweep-lr.yaml'], exp.dir, 60_000, { ...env, STUB_BEHAVIOR: JSON.stringify({ 'lr2e-3_f0.5': 'fail' }) });
  assert.equal(r.status, 1, `a failed run makes the sweep exit 1\n${r.stderr}`);
  assert.match(r.stderr, /lr2e-3_f0\.5 FAILED \(exit 1\) after [\d.]+ s: stub: boom in lr2e-3_f0\.5/);
  assert.match(r.stderr, /\[4\/4\] lr2e-3_f1 completed/, 'the run after the failure still ran');
  const sweepDir = join(exp.dir, 'runs', 'lr');
  assert.deepEqual(readdirSync(sweepDir).sort(), ['logs', 'lr1e-3_f0.5', 'lr1e-3_f1', 'lr2e-3_f1', 'sweep.json', 'sweep.md', 'sweep.yaml']);
  const json = JSON.parse(readFileSync(join(sweepDir, 'sweep.json'), 'utf8')) as { runs: Array<{ name: string; status: string; overrides: string[]; final_val_loss: number | null }>; best: Record<string, string>; baseline: string };
  assert.deepEqual(json.runs.map((x) => [x.name, x.status]), [['lr1e-3_f0.5', 'completed'], ['lr1e-3_f1', 'completed'], ['lr2e-3_f0.5', 'failed'], ['lr2e-3_f1', 'completed']]);
  assert.deepEqual(json.runs[1].overrides, ['optimizer.lr=0.001', 'train.steps=6']);
  assert.equal(json.runs[1].final_val_loss, 2 + 100 * 0.001 - 6 / 100);
  assert.deepEqual(json.best, { adamw: 'lr1e-3_f1' });
  assert.equal(json.baseline, 'lr1e-3_f1');
  assert.match(r.stdout, /target: val loss 2\.0400, the final of baseline lr1e-3_f1/, 'the compare table is printed');
  assert.match(readFileSync(join(sweepDir, 'sweep.md'), 'utf8'), /## Compared with lr1e-3_f1\n\ntarget: val loss 2\.0400/);

  writeFileSync(stub.calls, '');
  const again = soapTrain(['sweep', 'runs/lr'], exp.dir, 60_000, env);
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual(readCalls(stub.calls), ['lr2e-3_f0.5 fresh'], 'completed runs are skipped');
  assert.match(again.stderr, /lr1e-3_f0\.5: already completed, skipped/);

  const clash = soapTrain(['sweep', '--config', 'tiny.yaml', '--grid', 'optimizer.lr=5e-3', '--name', 'lr'], exp.dir, 60_000, env);
  assert.equal(clash.status, 2);
  assert.match(clash.stderr, /a different sweep already uses this directory/);
});

// ---------------------------------------------------------------------------------------------
// Job scripts

/** A stub trainer for the scripts: records its arguments NUL-separated, exits $STUB_EXIT. */
const SCRIPT_STUB = `#!/bin/bash
printf '%s\\0' "$@" > "$STUB_ARGS"
if [ "\${STUB_MODE:-}" = term ]; then
  trap 'echo term >> "$STUB_LOG"; kill "$sleeper" 2>/dev/null; exit 130' TERM
  sleep 30 & sleeper=$!
  kill -TERM "$PPID"
  wait "$sleeper"
  exit 0
fi
exit "\${STUB_EXIT:-0}"
`;

function scriptFixture() {
  const dir = tmp();
  const sweepDir = join(dir, 'runs', 'sw');
  mkdirSync(join(sweepDir, 'logs'), { recursive: true });
  const stub = join(dir, 'stub.sh');
  writeFileSync(stub, SCRIPT_STUB);
  chmodSync(stub, 0o755);
  const scontrol = join(dir, 'scontrol.sh');
  writeFileSync(scontrol, '#!/bin/bash\necho "$@" >> "$SCONTROL_LOG"\n');
  chmodSync(scontrol, 0o755);
  // Values that need quoting: a space, a single quote, a flow list, an empty run.
  const plan: SweepPlan = {
    version: 1,
    name: 'sw',
    base: join(dir, 'base config.yaml'),
    runs: [
      { name: 'lr1e-3_s0', set: ['optimizer.lr=1e-3', 'train.seed=0'], optimizer: 'adamw', steps: 10 },
      { name: 'betas0.9,0.95', set: ['optimizer.betas=[0.9, 0.95]'], optimizer: 'adamw', steps: 10 },
      { name: 'odd', set: [`data.train=it's here/*.bin`], optimizer: 'adamw', steps: 10 },
      { name: 'base', set: [], optimizer: 'adamw', steps: 10 },
    ],
  };
  const env = (extra: Record<string, string>) => ({
    ...process.env,
    SOAP_TRAIN: stub,
    SCONTROL: scontrol,
    STUB_ARGS: join(dir, 'args'),
    STUB_LOG: join(dir, 'stub.log'),
    SCONTROL_LOG: join(dir, 'scontrol.log'),
    ...extra,
  });
  const read = (name: string) => (existsSync(join(dir, name)) ? readFileSync(join(dir, name), 'utf8') : '');
  return { dir, sweepDir, plan, env, read };
}

test('bash quoting and #SBATCH option lines', () => {
  assert.equal(bashQuote('optimizer.lr=1e-3'), 'optimizer.lr=1e-3');
  assert.equal(bashQuote(`it's`), `'it'\\''s'`);
  assert.equal(bashQuote('[0.9, 0.95]'), `'[0.9, 0.95]'`);
  assert.equal(sbatchLine('time=04:00:00'), '--time=04:00:00');
  assert.equal(sbatchLine('--partition=gpu'), '--partition=gpu');
  assert.equal(sbatchLine('#SBATCH -N 1'), '-N 1');
});

test('the Slurm script passes bash -n, has the array header and maps each index to its run', () => {
  const f = scriptFixture();
  const script = join(f.dir, 'sweep.slurm');
  writeFileSync(script, slurmScript(f.plan, { dir: f.sweepDir, soapTrain: '/opt/soap-train/bin/soap-train', timeLimit: '3:50:00', sbatch: ['time=04:00:00'] }));
  const text = readFileSync(script, 'utf8');
  const check = spawnSync('bash', ['-n', script], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
  const sbatch = text.split('\n').filter((l) => l.startsWith('#SBATCH'));
  assert.deepEqual(sbatch, [
    '#SBATCH --job-name=sw',
    '#SBATCH --array=0-3',
    `#SBATCH --output=${f.sweepDir}/logs/%x-%A_%a.log`,
    '#SBATCH --open-mode=append',
    '#SBATCH --signal=B:TERM@120',
    '#SBATCH --requeue',
    '#SBATCH --time=04:00:00',
  ]);
  f.plan.runs.forEach((run, i) => {
    const r = spawnSync('bash', [script], { encoding: 'utf8', env: f.env({ SLURM_ARRAY_TASK_ID: String(i), SLURM_ARRAY_JOB_ID: '77' }) });
    assert.equal(r.status, 0, r.stderr);
    const args = f.read('args').split('\0').slice(0, -1);
    assert.deepEqual(args, [...trainArgs(f.plan, run, join(f.sweepDir, run.name), '3:50:00')], `task ${i}`);
  });
  assert.equal(f.read('scontrol.log'), '', 'a run that exits 0 is not requeued');
  const outside = spawnSync('bash', [script], { encoding: 'utf8', env: f.env({ SLURM_ARRAY_TASK_ID: '4' }) });
  assert.equal(outside.status, 2);
  assert.match(outside.stderr, /no run for task index 4 \(0-3\)/);
});

test('the Slurm task requeues itself on exit 75 and on a forwarded TERM, not on a failure', () => {
  const f = scriptFixture();
  const script = join(f.dir, 'sweep.slurm');
  writeFileSync(script, slurmScript(f.plan, { dir: f.sweepDir, soapTrain: '/nonexistent' }));
  const slurm = { SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_JOB_ID: '900' };

  const limit = spawnSync('bash', [script], { encoding: 'utf8', env: f.env({ ...slurm, STUB_EXIT: '75' }) });
  assert.equal(limit.status, 0, limit.stderr);
  assert.equal(f.read('scontrol.log'), 'requeue 900_2\n');

  const failed = spawnSync('bash', [script], { encoding: 'utf8', env: f.env({ ...slurm, STUB_EXIT: '1' }) });
  assert.equal(failed.status, 1, 'a failure is the task exit code');
  assert.equal(f.read('scontrol.log'), 'requeue 900_2\n', 'and is not requeued');

  // The stub sends TERM to the script (as Slurm's --signal=B:TERM would) and waits for it to be forwarded.
  const term = spawnSync('bash', [script], { encoding: 'utf8', env: f.env({ ...slurm, SLURM_ARRAY_TASK_ID: '0', STUB_MODE: 'term' }), timeout: 20_000 });
  assert.equal(term.status, 0, term.stderr);
  assert.equal(f.read('stub.log'), 'term\n', 'the trainer got exactly one TERM');
  assert.equal(f.read('scontrol.log'), 'requeue 900_2\nrequeue 900_0\n');
  assert.match(term.stdout, /lr1e-3_s0 stopped \(exit 130\); requeueing 900_0/);
});

test('the shell script runs every task, skips completed runs, goes on after a failure and collects', () => {
  const f = scriptFixture();
  const script = join(f.dir, 'sweep.sh');
  writeFileSync(script, shellScript(f.plan, { dir: f.sweepDir, soapTrain: '/nonexistent' }));
  assert.equal(spawnSync('bash', ['-n', script]).status, 0);
  mkdirSync(join(f.sweepDir, 'odd'));
  writeFileSync(join(f.sweepDir, 'odd', 'summary.json'), JSON.stringify({ status: 'completed', steps: 10 }, null, 2));
  // Every call overwrites STUB_ARGS, so record calls through a wrapper that appends.
  const wrapper = join(f.dir, 'wrap.sh');
  writeFileSync(wrapper, `#!/bin/bash\nprintf '%s ' "$@" >> "${join(f.dir, 'calls')}"; echo >> "${join(f.dir, 'calls')}"\n[ "$5" = "optimizer.betas=[0.9, 0.95]" ] && exit 1\nexit 0\n`);
  chmodSync(wrapper, 0o755);
  const r = spawnSync('bash', [script], { encoding: 'utf8', env: f.env({ SOAP_TRAIN: wrapper }) });
  assert.notEqual(r.status, 0, 'a failed run makes the script fail');
  const calls = f.read('calls').trim().split('\n');
  assert.equal(calls.length, 4, calls.join('\n'));
  assert.match(calls[0], /^train --config .*base config\.yaml --set optimizer\.lr=1e-3 --set train\.seed=0 --run-dir \S+\/lr1e-3_s0 --resume $/);
  assert.match(calls[1], /betas0\.9,0\.95 --resume $/);
  assert.match(calls[2], /--run-dir \S+\/base --resume $/, 'odd is completed: skipped');
  assert.equal(calls[3], `sweep ${f.sweepDir} --collect`);
  assert.match(r.stdout, /skip odd \(completed\)/);
  assert.match(r.stdout, /end betas0\.9,0\.95: exit 1/);
});

// ---------------------------------------------------------------------------------------------
// One real sweep

test('a real tiny sweep: two runs of the fraction family, sweep.json matching their summaries', () => {
  const exp = tinyExperiment();
  const r = soapTrain(['sweep', '--config', exp.config, '--fractions', '0.5,1', '--name', 'fam'], exp.dir, 240_000);
  assert.equal(r.status, 0, r.stderr);
  const sweepDir = join(exp.dir, 'runs', 'fam');
  const json = JSON.parse(readFileSync(join(sweepDir, 'sweep.json'), 'utf8')) as { runs: Array<{ name: string; status: string; steps: number; final_val_loss: number; tokens_per_s: number }>; baseline: string };
  assert.deepEqual(json.runs.map((x) => [x.name, x.status, x.steps]), [['f0.5', 'completed', 3], ['f1', 'completed', 6]]);
  for (const row of json.runs) {
    const summary = JSON.parse(readFileSync(join(sweepDir, row.name, 'summary.json'), 'utf8')) as { final_val_loss: number; tokens_per_s: number; steps: number };
    assert.equal(row.final_val_loss, summary.final_val_loss);
    assert.equal(row.tokens_per_s, summary.tokens_per_s);
    assert.equal(row.steps, summary.steps);
  }
  assert.equal(json.baseline, 'f1');
  assert.match(r.stdout, /target: val loss \d\.\d{4}, the final of baseline f1/);
  assert.match(readFileSync(join(sweepDir, 'logs', 'f1.log'), 'utf8'), /completed: 6 steps/);
  // Run again: both are complete, nothing trains.
  const again = soapTrain(['sweep', 'runs/fam'], exp.dir, 60_000);
  assert.equal(again.status, 0, again.stderr);
  assert.equal((again.stderr.match(/already completed, skipped/g) ?? []).length, 2);
});

test('defaults: bestPerOptimizer ignores unfinished runs; no AdamW run means no default baseline', () => {
  const row = (name: string, optimizer: string, status: 'completed' | 'interrupted', loss: number) => ({
    name, optimizer, overrides: [], status, exit_code: null, planned_steps: 1, steps: 1, final_val_loss: loss, best_val_loss: loss, tokens_per_s: null, wall_clock_s: null, run_dir: '', log: '',
  });
  assert.deepEqual(bestPerOptimizer([row('a', 'soap', 'completed', 3), row('b', 'soap', 'interrupted', 1), row('c', 'soap', 'completed', 2.5)]), { soap: 'c' });
  assert.equal(defaultBaseline(stubPlan('/x', [['a', ['optimizer.type=soap']]])), null);
});
