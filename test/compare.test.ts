/**
 * `soap-train compare` and its library (src/compare/): the power-law fit against known
 * parameters, the crossing against hand-computed interpolations, the family rule, compareRuns on
 * synthetic records with independently computed answers, and the command on the fixture run
 * directories (test/fixtures/runs: a family of 3, a family of 2, a resumed and an in-progress run).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  compareRuns,
  firstCrossing,
  fitPowerLaw,
  formatCompareMarkdown,
  formatCompareTable,
  formatRatio,
  groupFamilies,
  stepsToLoss,
  type CompareResult,
} from '../src/compare/index.js';
import { SoapTrainError } from '../src/errors.js';
import { readRun, type EvalRow, type RunRecord } from '../src/run/read-run.js';
import { tempDirs } from './helpers/tmp.js';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = join(here, '..');
const FIXTURES = join(here, 'fixtures/runs');
const fixture = (name: string) => join(FIXTURES, name);
const tmp = tempDirs('compare-');

const relErr = (got: number, want: number) => Math.abs(got - want) / Math.abs(want);
const law = (E: number, A: number, alpha: number) => (n: number) => E + A * Math.pow(n, -alpha);

// ── the fit ──────────────────────────────────────────────────────────────────────────────────

test('fitPowerLaw recovers known E, A, α from exact finals (5 points and exactly 3)', () => {
  const L = law(1.8, 12, 0.45);
  for (const ns of [[60, 90, 120, 150, 200], [60, 120, 200], [8, 12, 16]]) {
    const fit = fitPowerLaw(ns.map((n) => ({ steps: n, loss: L(n) })));
    assert.ok(fit, `fit for ${ns}`);
    assert.ok(relErr(fit.E, 1.8) < 1e-6, `E ${fit.E}`);
    assert.ok(relErr(fit.A, 12) < 1e-6, `A ${fit.A}`);
    assert.ok(relErr(fit.alpha, 0.45) < 1e-6, `alpha ${fit.alpha}`);
    assert.ok(fit.max_abs_residual < 1e-9, `residual ${fit.max_abs_residual}`);
  }
});

test('fitPowerLaw with noise: a least-squares optimum, its largest residual reported', () => {
  const L = law(1.8, 12, 0.45);
  const ns = [60, 90, 120, 150, 200];
  const noise = [0.004, -0.003, 0.002, -0.004, 0.001];
  const points = ns.map((n, i) => ({ steps: n, loss: L(n) + noise[i] }));
  const fit = fitPowerLaw(points);
  assert.ok(fit);
  const residuals = points.map((p) => p.loss - law(fit.E, fit.A, fit.alpha)(p.steps));
  assert.equal(fit.max_abs_residual, Math.max(...residuals.map(Math.abs)));
  assert.ok(fit.max_abs_residual > 1e-4, 'noise must leave a residual');
  // Least squares: no worse than the true parameters, nor than nearby perturbations of the fit.
  const sse = (E: number, A: number, alpha: number) => points.reduce((s, p) => s + (p.loss - law(E, A, alpha)(p.steps)) ** 2, 0);
  const best = sse(fit.E, fit.A, fit.alpha);
  assert.ok(best <= sse(1.8, 12, 0.45));
  for (const [dE, dA, da] of [[1e-3, 0, 0], [-1e-3, 0, 0], [0, 1e-2, 0], [0, -1e-2, 0], [0, 0, 1e-3], [0, 0, -1e-3]]) {
    assert.ok(best <= sse(fit.E + dE, fit.A + dA, fit.alpha + da) + 1e-15);
  }
  assert.ok(Math.abs(fit.E - 1.8) < 0.5, `E ${fit.E} near the truth`);
  // A flattening, slightly rising tail: the asymptote still stays at or below every loss.
  const flat = fitPowerLaw([[10, 3.0], [20, 2.2], [40, 2.0], [80, 2.01]].map(([steps, loss]) => ({ steps, loss })));
  assert.ok(flat && flat.E <= 2.0 && flat.A > 0 && flat.alpha > 0, JSON.stringify(flat));
});

test('fitPowerLaw: no fit for a rising loss, too few points or too few distinct lengths', () => {
  assert.equal(fitPowerLaw([{ steps: 10, loss: 3 }, { steps: 20, loss: 3.5 }, { steps: 40, loss: 4 }]), null);
  assert.equal(fitPowerLaw([{ steps: 10, loss: 3 }, { steps: 20, loss: 2.5 }]), null);
  assert.equal(fitPowerLaw([{ steps: 10, loss: 3 }, { steps: 10, loss: 3 }, { steps: 10, loss: 3 }]), null);
});

test('stepsToLoss inverts the curve and is null at or below E', () => {
  const fit = { E: 1.8, A: 12, alpha: 0.45 };
  assert.ok(relErr(stepsToLoss(fit, law(1.8, 12, 0.45)(137))!, 137) < 1e-12);
  // (12 / (3.0 − 1.8))^(1/0.45) = 10^(1/0.45)
  assert.ok(relErr(stepsToLoss(fit, 3.0)!, Math.pow(10, 1 / 0.45)) < 1e-12);
  assert.equal(stepsToLoss(fit, 1.8), null);
  assert.equal(stepsToLoss(fit, 1.5), null);
});

// ── the crossing ─────────────────────────────────────────────────────────────────────────────

test('firstCrossing interpolates linearly between evaluations, exactly', () => {
  const curve = [{ step: 4, val_loss: 5.0 }, { step: 8, val_loss: 4.0 }, { step: 12, val_loss: 3.0 }, { step: 16, val_loss: 3.5 }];
  assert.equal(firstCrossing(curve, 3.5), 10); // halfway from 4.0 (step 8) to 3.0 (step 12)
  assert.equal(firstCrossing(curve, 3.75), 9);
  assert.equal(firstCrossing(curve, 4.0), 8); // reached exactly at an evaluation
  assert.ok(Math.abs(firstCrossing(curve, 4.8)! - 4.8) < 1e-12); // 4 + 0.2 × 4
  assert.equal(firstCrossing(curve, 6), 4); // already below at the first evaluation
  assert.equal(firstCrossing(curve, 2.9), null);
  // A diverged (NaN) evaluation is skipped: interpolate from step 4 to step 12.
  assert.equal(firstCrossing([{ step: 4, val_loss: 5 }, { step: 8, val_loss: Number.NaN }, { step: 12, val_loss: 3 }], 4), 8);
});

// ── families and compareRuns on synthetic records ───────────────────────────────────────────

interface FakeRun {
  name: string;
  optimizer?: string;
  steps: number;
  /** Final validation loss (an eval at `steps`), or the whole curve. */
  final?: number;
  evals?: [number, number][];
  secondsPerStep?: number;
  config?: Record<string, unknown>;
  status?: RunRecord['status'];
  backend?: string;
}

function fakeRun(f: FakeRun): RunRecord {
  const evals: EvalRow[] = (f.evals ?? [[f.steps, f.final ?? Number.NaN]]).map(([step, val]) => ({
    step, tokens: step * 10, val_loss: val, wall_s: step * (f.secondsPerStep ?? 1), eval_s: 0.1,
  }));
  const lastStep = evals.at(-1)?.step ?? 0;
  const trainSeconds = lastStep * (f.secondsPerStep ?? 1);
  const config = {
    backend: 'auto',
    optimizer: { type: f.optimizer ?? 'soap', lr: 0.003 },
    schedule: { type: 'cosine', warmup_steps: 2 },
    train: { steps: f.steps, seed: 0, eval_steps: 8, log_interval: 10, eval_interval: 40 },
    checkpoint: { interval: 0 },
    ...f.config,
  };
  const lastEval = evals.at(-1);
  return {
    dir: `/fake/${f.name}`, name: f.name, config, optimizer: f.optimizer ?? 'soap', plannedSteps: f.steps, metrics: [], evals,
    summary: { status: f.status ?? 'completed', backend: f.backend ?? 'wasm' }, manifest: null, status: f.status ?? 'completed',
    lastStep, trainSeconds, secondsPerStep: lastStep > 0 ? trainSeconds / lastStep : null,
    finalValLoss: lastEval && Number.isFinite(lastEval.val_loss) ? lastEval.val_loss : null,
  };
}

test('families: only train.steps (and the decay that follows it) and trajectory-neutral keys may differ', () => {
  const base = { name: 'a', steps: 100, final: 3 };
  const withTrain = (extra: Record<string, unknown>) => ({ train: { steps: 0, seed: 0, eval_steps: 8, log_interval: 10, eval_interval: 40, ...extra } });
  const runs = [
    fakeRun(base),
    fakeRun({ name: 'b', steps: 200, final: 2.9 }),
    fakeRun({ name: 'c-decay-follows', steps: 300, final: 2.8, config: { schedule: { type: 'cosine', warmup_steps: 2, decay_steps: 300 } } }),
    fakeRun({ name: 'd-neutral', steps: 400, final: 2.7, config: { checkpoint: { interval: 50, keep: 3 }, backend: 'wasm', ...withTrain({ steps: 400, log_interval: 1, eval_interval: 5, max_wall_s: 60 }) } }),
    fakeRun({ name: 'e-own-decay', steps: 300, final: 2.8, config: { schedule: { type: 'cosine', warmup_steps: 2, decay_steps: 150 } } }),
    fakeRun({ name: 'f-seed', steps: 100, final: 3, config: withTrain({ steps: 100, seed: 1 }) }),
    fakeRun({ name: 'g-eval-steps', steps: 100, final: 3, config: withTrain({ steps: 100, eval_steps: 16 }) }),
    fakeRun({ name: 'h-lr', steps: 100, final: 3, config: { optimizer: { type: 'soap', lr: 0.001 } } }),
    fakeRun({ name: 'i-ran-on-cpu', steps: 100, final: 3, backend: 'cpu' }),
  ];
  assert.deepEqual(groupFamilies(runs).map((f) => f.map((r) => r.name)), [
    ['a', 'b', 'c-decay-follows', 'd-neutral'], ['e-own-decay'], ['f-seed'], ['g-eval-steps'], ['h-lr'], ['i-ran-on-cpu'],
  ]);
});

test('compareRuns: fit family against a baseline, answers computed independently', () => {
  const L = law(1.8, 12, 0.45);
  const soap = [60, 90, 120, 150, 200].map((n) => fakeRun({ name: `soap-${n}`, steps: n, final: L(n), secondsPerStep: 1.5 }));
  // Baseline AdamW: 300 steps at 1.0 s/step, final val loss 2.4.
  const baseline = fakeRun({ name: 'adamw', optimizer: 'adamw', steps: 300, evals: [[100, 3.2], [200, 2.6], [300, 2.4]], secondsPerStep: 1.0 });
  const result = compareRuns(baseline, [...soap].reverse());
  assert.deepEqual(result.baseline, { run: 'adamw', target_loss: 2.4, steps: 300, wall_s: 300 });
  assert.equal(result.results.length, 2);

  const own = result.results[0];
  assert.deepEqual(own.runs, ['adamw']);
  assert.equal(own.method, 'crossing');
  assert.equal(own.steps_to_target, 300);
  assert.equal(own.step_ratio, 1);
  assert.equal(own.wall_ratio, 1);
  assert.equal(own.includes_baseline, true);

  const fam = result.results[1];
  assert.deepEqual(fam.runs, ['soap-60', 'soap-90', 'soap-120', 'soap-150', 'soap-200']);
  assert.equal(fam.method, 'fit');
  const nStar = Math.pow(12 / (2.4 - 1.8), 1 / 0.45); // 20^(1/0.45) ≈ 779.3
  assert.ok(relErr(fam.steps_to_target!, nStar) < 1e-6, `n* ${fam.steps_to_target} vs ${nStar}`);
  assert.ok(relErr(fam.wall_s_to_target!, nStar * 1.5) < 1e-6);
  assert.ok(relErr(fam.step_ratio!, nStar / 300) < 1e-6);
  assert.ok(relErr(fam.wall_ratio!, (nStar * 1.5) / 300) < 1e-6);
  assert.ok(fam.fit && relErr(fam.fit.alpha, 0.45) < 1e-6);
  assert.equal(fam.seconds_per_step, 1.5);
  assert.deepEqual(fam.fit_points?.map((p) => p.steps), [60, 90, 120, 150, 200]);
  assert.equal(fam.note, null);

  // A target below the fitted E: unreachable, every to-target value null.
  const low = compareRuns(fakeRun({ name: 'adamw', optimizer: 'adamw', steps: 300, final: 1.7 }), soap).results[1];
  assert.equal(low.method, 'fit');
  assert.equal(low.steps_to_target, null);
  assert.equal(low.wall_s_to_target, null);
  assert.equal(low.step_ratio, null);
  assert.equal(low.wall_ratio, null);
  assert.match(low.note ?? '', /below the fitted asymptote/);
});

test('compareRuns: a fit with α at its lower bound (losses linear in log n) is flagged as degenerate', () => {
  // L = 5 − 0.4·ln n exactly: the power law can only approach it as α → 0 (E → −∞).
  const family = [120, 180, 240].map((n) => fakeRun({ name: `adamw-${n}`, optimizer: 'adamw', steps: n, final: 5 - 0.4 * Math.log(n) }));
  const fam = compareRuns(family[2], family).results.find((r) => r.method === 'fit');
  assert.ok(fam?.fit && fam.fit.alpha <= 2e-3, `α = ${fam?.fit?.alpha}`);
  assert.match(fam.note ?? '', /degenerate fit/);
  // A healthy fit has no such note (the test above: note null).
  const L = law(1.8, 12, 0.45);
  const healthy = [60, 90, 120].map((n) => fakeRun({ name: `soap-${n}`, steps: n, final: L(n) }));
  assert.doesNotMatch(compareRuns(healthy[2], healthy).results.find((r) => r.method === 'fit')?.note ?? '', /degenerate/);
});

test('compareRuns: the baseline joins its family (AdamW fractions); families of 2 and in-progress runs use the crossing', () => {
  const L = law(2.0, 8, 0.5);
  const baseline = fakeRun({ name: 'adamw-400', optimizer: 'adamw', steps: 400, final: L(400), secondsPerStep: 2 });
  const fractions = [100, 200].map((n) => fakeRun({ name: `adamw-${n}`, optimizer: 'adamw', steps: n, final: L(n), secondsPerStep: 2 }));
  const pair = [
    fakeRun({ name: 'soap-a', steps: 100, evals: [[50, 2.9], [100, 2.3]], secondsPerStep: 3 }),
    fakeRun({ name: 'soap-b', steps: 200, evals: [[100, 2.5], [200, 2.3]], secondsPerStep: 1 }),
  ];
  // Planned 300 steps but only evaluated to 150: listed, not fitted, status kept.
  const running = fakeRun({ name: 'shampoo-run', optimizer: 'shampoo', steps: 300, evals: [[50, 2.9], [150, 2.1]], status: 'in_progress' });
  const result = compareRuns(baseline, [...fractions, ...pair, running, baseline]);
  const target = L(400); // 2.4

  const adamw = result.results[0];
  assert.deepEqual(adamw.runs, ['adamw-100', 'adamw-200', 'adamw-400']);
  assert.equal(adamw.method, 'fit');
  assert.equal(adamw.includes_baseline, true);
  assert.ok(relErr(adamw.steps_to_target!, 400) < 1e-6, `${adamw.steps_to_target}`);
  assert.ok(relErr(adamw.wall_ratio!, 1) < 1e-6);

  // Family of 2: one crossing row per run; wall-clock from the family's rate (400 s / 300 steps).
  const [a, b] = result.results.slice(1, 3);
  assert.deepEqual([a.runs, b.runs, a.method, b.method], [['soap-a'], ['soap-b'], 'crossing', 'crossing']);
  const rateAB = (100 * 3 + 200 * 1) / 300;
  const crossA = 50 + ((2.9 - target) / (2.9 - 2.3)) * 50;
  const crossB = 100 + ((2.5 - target) / (2.5 - 2.3)) * 100;
  assert.ok(relErr(a.steps_to_target!, crossA) < 1e-12);
  assert.ok(relErr(b.steps_to_target!, crossB) < 1e-12);
  assert.ok(relErr(a.wall_s_to_target!, crossA * rateAB) < 1e-12);
  assert.ok(relErr(b.step_ratio!, crossB / 400) < 1e-12);
  assert.match(a.note ?? '', /family of 2/);

  const run = result.results[3];
  assert.deepEqual(run.status, ['in_progress']);
  assert.equal(run.method, 'crossing');
  assert.ok(relErr(run.steps_to_target!, 50 + ((2.9 - target) / (2.9 - 2.1)) * 100) < 1e-12);
  assert.equal(result.results.length, 4);
});

test('compareRuns: a baseline with no evaluation is bad input', () => {
  const noEval = fakeRun({ name: 'empty', steps: 10, evals: [] });
  assert.throws(() => compareRuns(noEval, []), (err: unknown) => err instanceof SoapTrainError && err.exitCode === 2 && /eval\.jsonl$/.test(err.file ?? ''));
});

test('formatRatio: times and signed percent', () => {
  assert.equal(formatRatio(0.58, 'steps'), '0.58× (−42 % steps)');
  assert.equal(formatRatio(1.25, 'time'), '1.25× (+25 % time)');
  assert.equal(formatRatio(1, 'steps'), '1.00× (±0 % steps)');
  assert.equal(formatRatio(null, 'steps'), '—');
});

// ── the fixture run directories ─────────────────────────────────────────────────────────────

const finalVal = (name: string) => (JSON.parse(readFileSync(join(fixture(name), 'summary.json'), 'utf8')) as { final_val_loss: number }).final_val_loss;

test('fixtures: the resumed run reads as one continuous curve; the in-progress one stops before its torn row', () => {
  const resumed = readRun(fixture('soap-lr2e-3-resumed'));
  assert.equal(resumed.status, 'completed');
  assert.equal(resumed.summary?.resumed_from_step, 5);
  assert.deepEqual(resumed.metrics.map((r) => r.step), [2, 4, 6, 8, 10, 12]);
  assert.ok(resumed.metrics.every((r, i) => i === 0 || r.wall_s > resumed.metrics[i - 1].wall_s), 'training clock rises across the resume');
  assert.equal(resumed.finalValLoss, finalVal('soap-lr2e-3-resumed'));

  const running = readRun(fixture('adamw-lr1e-3-inprogress'));
  assert.equal(running.status, 'in_progress');
  assert.equal(running.summary, null);
  assert.deepEqual(running.metrics.map((r) => r.step), [2, 4, 6, 8]);
  assert.equal(running.lastStep, 8);
  assert.equal(running.plannedSteps, 12);
  assert.equal(running.trainSeconds, running.metrics[3].wall_s);
});

test('fixtures: with baseline soap-16 the SOAP family of 3 is fitted exactly and solved back to 16 steps', () => {
  const names = ['adamw-16', 'adamw-8', 'soap-8', 'soap-12', 'soap-16', 'soap-lr2e-3-resumed', 'adamw-lr1e-3-inprogress'];
  const result = compareRuns(readRun(fixture('soap-16')), names.map((n) => readRun(fixture(n))));
  assert.equal(result.baseline.target_loss, finalVal('soap-16'));
  assert.deepEqual(result.results.map((r) => [r.runs.join(' '), r.method]), [
    ['soap-8 soap-12 soap-16', 'fit'],
    ['adamw-8', 'crossing'],
    ['adamw-16', 'crossing'],
    ['soap-lr2e-3-resumed', 'crossing'],
    ['adamw-lr1e-3-inprogress', 'crossing'],
  ]);
  const fam = result.results[0];
  assert.deepEqual(fam.fit_points?.map((p) => [p.steps, p.val_loss]), [8, 12, 16].map((n) => [n, finalVal(`soap-${n}`)]));
  // 3 points, 3 parameters: the curve passes through them, and through the baseline's own final.
  assert.ok(fam.fit!.max_abs_residual < 1e-9);
  assert.ok(Math.abs(fam.steps_to_target! - 16) < 1e-6);
  assert.ok(Math.abs(fam.step_ratio! - 1) < 1e-7);
  assert.deepEqual(result.results[4].status, ['in_progress']);
  // AdamW is below SOAP's final at its first evaluation already: an upper bound, said so.
  assert.equal(result.results[1].steps_to_target, 4);
  assert.match(result.results[1].note ?? '', /family of 2.*; already below the target at its first evaluation \(step 4\)/);
});

function runCli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/soap-train'), ...args], { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('soap-train compare: table on stdout, --json in exactly the schema, --markdown the same rows', () => {
  const out = tmp();
  const runs = ['adamw-8', 'soap-8', 'soap-12', 'soap-16', 'soap-lr2e-3-resumed', 'adamw-lr1e-3-inprogress'].map(fixture);
  const r = runCli(['compare', '--baseline', fixture('adamw-16'), ...runs, '--json', join(out, 'c.json'), '--markdown', join(out, 'c.md')]);
  assert.equal(r.status, 0, r.stderr);
  const json = JSON.parse(readFileSync(join(out, 'c.json'), 'utf8')) as CompareResult;
  assert.deepEqual(Object.keys(json), ['baseline', 'results']);
  assert.deepEqual(Object.keys(json.baseline), ['run', 'target_loss', 'steps', 'wall_s']);
  assert.deepEqual(json.baseline, { run: 'adamw-16', target_loss: finalVal('adamw-16'), steps: 16, wall_s: readRun(fixture('adamw-16')).trainSeconds });
  for (const row of json.results) {
    assert.deepEqual(Object.keys(row).slice(0, 7), ['runs', 'method', 'steps_to_target', 'wall_s_to_target', 'step_ratio', 'wall_ratio', 'fit']);
    if (row.fit) assert.deepEqual(Object.keys(row.fit), ['E', 'A', 'alpha', 'max_abs_residual']);
  }
  assert.deepEqual(json.results.map((row) => row.runs), [['adamw-8'], ['adamw-16'], ['soap-8', 'soap-12', 'soap-16'], ['soap-lr2e-3-resumed'], ['adamw-lr1e-3-inprogress']]);
  // The JSON is the library's result for the same runs, and stdout/markdown are its formatting.
  const lib = compareRuns(readRun(fixture('adamw-16')), runs.map(readRun));
  assert.deepEqual(json, JSON.parse(JSON.stringify(lib)));
  assert.equal(r.stdout, formatCompareTable(lib));
  const md = readFileSync(join(out, 'c.md'), 'utf8');
  assert.equal(md, formatCompareMarkdown(lib));
  const tableRows = md.split('\n').filter((l) => l.startsWith('| '));
  assert.equal(tableRows.length, 1 + json.results.length);
  assert.match(tableRows.find((l) => l.includes('adamw-lr1e-3-inprogress'))!, /\| in progress \|/);
  assert.match(r.stdout, /adamw-16 \(baseline\)/);
});

test('soap-train compare: bad input is one line and exit 2', () => {
  const broken = join(tmp(), 'no-evals');
  cpSync(fixture('adamw-8'), broken, { recursive: true });
  writeFileSync(join(broken, 'eval.jsonl'), '');
  const r = runCli(['compare', '--baseline', broken, fixture('soap-8')]);
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.match(r.stderr, /no-evals\/eval\.jsonl: the baseline has no validation loss/);
  const missing = runCli(['compare', '--baseline', fixture('adamw-16'), join(tmp(), 'missing-run')]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /missing-run: no such run directory/);
  const unwritable = runCli(['compare', '--baseline', fixture('adamw-16'), fixture('adamw-8'), '--json', join(tmp(), 'no-such-folder', 'c.json')]);
  assert.equal(unwritable.status, 2);
  assert.match(unwritable.stderr, /c\.json: cannot write --json file \(ENOENT\)/);
});
