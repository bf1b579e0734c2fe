/**
 * `npm run reproduce` (scripts/reproduce*): the study's sweep files and plans, the best-rate
 * choice, the ratio/spread and critical-batch arithmetic, the estimates, the README section, and
 * the whole driver end to end with a stub trainer whose losses are a known closed form
 * (test/fixtures/reproduce/synthetic.mjs), so every reported number can be worked out here.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { compareRuns } from '../src/compare/index.js';
import { loadConfig, parseOverride } from '../src/config/load.js';
import { SoapTrainError } from '../src/errors.js';
import { readRun } from '../src/run/read-run.js';
import type { SweepRow } from '../src/sweep/results.js';
import { studyOptions } from '../scripts/reproduce.js';
import type { ReproduceResults } from '../scripts/reproduce/analyze.js';
import { fitCriticalBatch } from '../scripts/reproduce/batch.js';
import { dryRun, runStudy } from '../scripts/reproduce/driver.js';
import { evaluationCount, optimizerFactor, StudyClock, formatDuration } from '../scripts/reproduce/estimate.js';
import { computeHeadline, spread } from '../scripts/reproduce/headline.js';
import { chooseBestRates, lrOf, lrRuns, withRates, type LrRun } from '../scripts/reproduce/rates.js';
import { placeholderSection, README_END, README_START, renderReadmeSection, SECTION_TITLE, spliceReadme } from '../scripts/reproduce/readme-section.js';
import { planSweep } from '../scripts/reproduce/run-sweep.js';
import { QUICK_SCALE, scaledBaseTree, STAGES, stageSweeps, type StudyLayout } from '../scripts/reproduce/study.js';
import { B_NOISE, curveOf, S_SCALE, TRUTH } from './fixtures/reproduce/synthetic.mjs';
import { REPO } from './helpers/tiny-run.js';
import { tempDirs } from './helpers/tmp.js';

const tmp = tempDirs('soap-reproduce-');
const STUDY = join(REPO, 'reproduce');
const FIXTURE_RUNS = join(REPO, 'test', 'fixtures', 'runs');
const STUB = join(REPO, 'test', 'fixtures', 'reproduce', 'stub-trainer.mjs');

function layout(out = join(REPO, 'runs', 'reproduce')): StudyLayout {
  return { studyDir: STUDY, out, base: join(STUDY, 'base.yaml') };
}

const stage = (id: string) => STAGES.find((s) => s.id === id)!;

function throwsBadInput(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof SoapTrainError && err.exitCode === 2 && pattern.test(err.oneLine()));
}

// ---------------------------------------------------------------------------------------------
// The study's files and plans

test('the stage files give the study its 51 runs, named as the stages expect', () => {
  const plans = STAGES.flatMap((s) => stageSweeps(s, layout(), null).map((sweep) => ({ sweep, plan: planSweep(sweep) })));
  const counts = Object.fromEntries(plans.map((p) => [p.sweep.name, p.plan.runs.length]));
  assert.deepEqual(counts, { 'stage0-batch': 3, 'stage1-lr': 9, 'stage2-adamw': 1, 'stage2-family': 10, 'stage3-frequency': 6, 'stage4-seeds-adamw': 2, 'stage4-seeds-family': 20 });
  const names = (name: string) => plans.find((p) => p.sweep.name === name)!.plan.runs.map((r) => `${r.name}:${r.steps}`);
  assert.deepEqual(names('stage2-adamw'), ['adamw_f1:400']);
  assert.deepEqual(names('stage2-family').slice(0, 5), ['soap_f0.5:200', 'soap_f0.625:250', 'soap_f0.75:300', 'soap_f0.875:350', 'soap_f1:400']);
  assert.deepEqual(names('stage1-lr').slice(0, 3), ['adamw_lr1e-3_f0.5:200', 'adamw_lr3e-3_f0.5:200', 'adamw_lr0.01_f0.5:200']);
  assert.deepEqual(names('stage4-seeds-adamw'), ['adamw_seed1_f1:400', 'adamw_seed2_f1:400']);
  assert.equal(names('stage4-seeds-family')[0], 'soap_seed1_f0.5:200');
  assert.deepEqual(names('stage3-frequency').slice(0, 3), ['soap_precondition_frequency1:400', 'soap_precondition_frequency32:400', 'soap_precondition_frequency100:400']);
  // The batch sweep evaluates 16 micro-batches of 8 = the 128 windows the other stages see (8 of 16).
  const batch = plans.find((p) => p.sweep.name === 'stage0-batch')!.plan;
  for (const run of batch.runs) {
    const t = loadConfig(batch.base, run.set.map(parseOverride)).config.train;
    assert.equal(t.eval_steps * (t.micro_batch_size ?? t.batch_size), 128, run.name);
  }
  const headline = loadConfig(batch.base, plans.find((p) => p.sweep.name === 'stage2-adamw')!.plan.runs[0].set.map(parseOverride)).config.train;
  assert.equal(headline.eval_steps * headline.batch_size, 128);
});

test('the stage files agree on each optimizer section apart from lr (stage 3 reuses stage 2 runs)', () => {
  const sections = new Map<string, string>();
  for (const file of ['stage1-lr.yaml', 'stage2-adamw.yaml', 'stage2-family.yaml', 'stage3-frequency.yaml']) {
    const doc = parseYaml(readFileSync(join(STUDY, file), 'utf8')) as { sweep: { grid: { optimizer: Record<string, unknown>[] } } };
    for (const section of doc.sweep.grid.optimizer) {
      const { lr: _lr, ...rest } = section;
      const key = JSON.stringify(rest);
      const seen = sections.get(String(section.type));
      if (seen !== undefined) assert.equal(key, seen, `${file}: ${String(section.type)}`);
      sections.set(String(section.type), key);
    }
  }
  assert.deepEqual([...sections.keys()].sort(), ['adamw', 'shampoo', 'soap']);
});

test('a scaled base shortens the budget and the intervals, keeps the data, and loads', () => {
  const dir = tmp();
  const tree = scaledBaseTree(join(STUDY, 'base.yaml'), QUICK_SCALE);
  assert.deepEqual(tree.train, { steps: 8, eval_interval: 1, log_interval: 1, eval_steps: 2 });
  assert.deepEqual(tree.schedule, { warmup_steps: 1 }, '40 × 8/400 = 0.8 → 1, shorter than the run');
  assert.equal((tree.data as { train: string }).train, join(REPO, 'data', 'sotu-byte', 'train_*.bin'), 'made absolute: the file lives elsewhere');
  const half = scaledBaseTree(join(STUDY, 'base.yaml'), { factor: 0.5, quick: false });
  assert.deepEqual(half.train, { steps: 200, eval_interval: 25, log_interval: 5 });
  assert.equal(half.model, undefined);
  const file = join(dir, 'base.yaml');
  writeFileSync(file, JSON.stringify(tree));
  const sweep = stageSweeps(stage('headline'), { ...layout(dir), base: file }, null)[1];
  assert.deepEqual(planSweep(sweep).runs.map((r) => r.steps), [4, 5, 6, 7, 8, 4, 5, 6, 7, 8], 'five different lengths at 8 steps');
});

// ---------------------------------------------------------------------------------------------
// Best rates

const lrRun = (optimizer: string, lr: number, loss: number | null, status = 'completed'): LrRun => ({ run: `${optimizer}_lr${lr}`, optimizer, lr, status, final_val_loss: loss });

test('the best rate is the lowest final loss among completed runs; a failed or diverged rate never wins', () => {
  const best = chooseBestRates([
    lrRun('adamw', 1e-3, 2.5),
    lrRun('adamw', 3e-3, 2.3),
    lrRun('adamw', 1e-2, 2.4),
    lrRun('soap', 1e-3, 2.6),
    lrRun('soap', 3e-3, 2.2),
    lrRun('soap', 1e-2, 1.9, 'failed'),
    lrRun('shampoo', 1e-3, 2.3),
    lrRun('shampoo', 3e-3, 2.3),
    lrRun('shampoo', 1e-2, null),
    lrRun('adafactor', 1e-3, null, 'failed'),
  ]);
  assert.deepEqual(Object.keys(best).sort(), ['adamw', 'shampoo', 'soap'], 'no completed run: no best');
  assert.equal(best.adamw.lr, 3e-3);
  assert.equal(best.adamw.edge, null);
  assert.equal(best.soap.lr, 3e-3, 'the failed run had the lowest loss but does not count');
  assert.equal(best.shampoo.lr, 1e-3, 'a tie goes to the smaller rate');
  assert.equal(best.shampoo.edge, 'lowest');
  assert.deepEqual(best.soap.rates, [1e-3, 3e-3, 1e-2]);
  assert.equal(chooseBestRates([lrRun('soap', 1e-3, 2), lrRun('soap', 1e-2, 1.5)]).soap.edge, 'highest');
});

test("a run's lr comes from its overrides: the section's, or a later optimizer.lr", () => {
  assert.equal(lrOf(['optimizer={type: soap, lr: 0.003}', 'optimizer.lr=0.01', 'train.steps=120']), 0.01);
  assert.equal(lrOf(['optimizer={type: soap, lr: 3.0e-3}']), 0.003);
  assert.equal(lrOf(['train.steps=120']), null);
  const row = { name: 'x', optimizer: 'soap', overrides: ['optimizer={type: soap, lr: 1e-3}'], status: 'completed', final_val_loss: 2 } as SweepRow;
  assert.deepEqual(lrRuns([row]), [{ run: 'x', optimizer: 'soap', lr: 1e-3, status: 'completed', final_val_loss: 2 }]);
});

test("the later stages take each optimizer's best rate; run names stay", () => {
  const [family] = stageSweeps(stage('headline'), layout(), null).slice(1);
  const before = planSweep(family);
  const rated = withRates(family.spec, { soap: 0.01, shampoo: 0.001, adamw: 0.003 });
  const after = planSweep({ ...family, spec: rated });
  assert.deepEqual(after.runs.map((r) => r.name), before.runs.map((r) => r.name));
  assert.equal(lrOf(after.runs.find((r) => r.name === 'soap_f1')!.set), 0.01);
  assert.equal(lrOf(after.runs.find((r) => r.name === 'shampoo_f0.5')!.set), 0.001);
  throwsBadInput(() => withRates(family.spec, { soap: 0.01 }), /no completed run of shampoo/);
});

// ---------------------------------------------------------------------------------------------
// Arithmetic

test('spread: mean, sample standard deviation, range; nulls left out', () => {
  const s = spread([
    { seed: 0, value: 0.6 },
    { seed: 1, value: 0.7 },
    { seed: 2, value: 0.8 },
    { seed: 3, value: null },
  ]);
  assert.equal(s.n, 3);
  assert.ok(Math.abs(s.mean! - 0.7) < 1e-12);
  assert.ok(Math.abs(s.std! - 0.1) < 1e-12, 'sqrt((0.01 + 0 + 0.01) / 2)');
  assert.equal(s.min, 0.6);
  assert.equal(s.max, 0.8);
  assert.deepEqual(spread([{ seed: 0, value: 0.5 }]), { n: 1, mean: 0.5, std: null, min: 0.5, max: 0.5, values: [{ seed: 0, value: 0.5 }] });
  assert.equal(spread([]).mean, null);
});

test('the critical-batch fit recovers S_min and B_noise from S(B) = S_min·(1 + B_noise/B)', () => {
  const points = [8, 16, 32].map((batch) => ({ batch, steps: 50 * (1 + 12 / batch) }));
  const fit = fitCriticalBatch(points)!;
  assert.ok(Math.abs(fit.s_min - 50) < 1e-9);
  assert.ok(Math.abs(fit.b_noise - 12) < 1e-9);
  assert.ok(fit.max_abs_residual < 1e-9);
  assert.equal(fitCriticalBatch([{ batch: 8, steps: 100 }, { batch: 16, steps: 100 }]), null, 'steps that do not fall: no fit');
  assert.equal(fitCriticalBatch([{ batch: 8, steps: 100 }, { batch: 16, steps: 40 }]), null, 'falling faster than 1/B: S_min ≤ 0');
});

test('the headline on fixture runs is compareRuns’ fit for the family, against the longest AdamW run', () => {
  const runs = ['adamw-8', 'adamw-16', 'soap-8', 'soap-12', 'soap-16'].map((n) => readRun(join(FIXTURE_RUNS, n)));
  const h = computeHeadline(runs, ['soap']);
  const expected = compareRuns(runs[1], runs.slice(2)).results.find((r) => r.optimizer === 'soap' && r.method === 'fit')!;
  assert.equal(h.seeds.length, 1);
  assert.equal(h.seeds[0].baseline.run, 'adamw-16');
  assert.equal(h.seeds[0].optimizers.soap.method, 'fit');
  assert.equal(h.summary.soap.step_ratio.mean, expected.step_ratio);
  assert.equal(h.summary.soap.wall_ratio.mean, expected.wall_ratio);
  assert.equal(h.summary.soap.max_abs_residual, expected.fit!.max_abs_residual);
  assert.equal(h.summary.soap.final_val_loss.mean, runs[4].finalValLoss);
  // An in-progress AdamW run sets no target: that seed is left out, and said so.
  const left = computeHeadline([readRun(join(FIXTURE_RUNS, 'adamw-lr1e-3-inprogress')), ...runs.slice(2)], ['soap']);
  assert.equal(left.seeds.length, 0);
  assert.match(left.notes[0], /seed 0: AdamW run adamw-lr1e-3-inprogress is in progress/);
});

test('estimates: optimizer factors, evaluations per run, and an ETA that learns from finished runs', () => {
  assert.equal(optimizerFactor('adamw', null), 1);
  assert.ok(Math.abs(optimizerFactor('soap', 10) - 1.244) < 1e-3, 'calibrated: 1.244× at f = 10');
  assert.ok(Math.abs(optimizerFactor('shampoo', 1) - 2.474) < 1e-3, 'calibrated: 2.474× at f = 1');
  assert.equal(evaluationCount(240, 40), 6);
  assert.equal(evaluationCount(210, 40), 6, '40, 80, 120, 160, 200 and the end');
  assert.equal(evaluationCount(8, 0), 1);
  const clock = new StudyClock(2);
  clock.plan('a', 100);
  clock.plan('b', 100);
  clock.plan('c', 200);
  assert.equal(clock.remainingSeconds(), 200, '400 s of runs on 2 cores');
  clock.finish('a', null);
  assert.equal(clock.remainingSeconds(), 150, 'a skipped run tells nothing about speed');
  clock.finish('b', 150);
  assert.equal(clock.speed(), 1.5);
  assert.equal(clock.remainingSeconds(), 150, '200 s × 1.5 / 2');
  assert.deepEqual([clock.done, clock.planned], [2, 3]);
  assert.deepEqual([formatDuration(42), formatDuration(750), formatDuration(4000)], ['42 s', '12.5 min', '1 h 07 min']);
});

// ---------------------------------------------------------------------------------------------
// README section

test('the README section goes between the markers; the reading is kept word for word', () => {
  const readme = `# T\n\nintro\n\n${README_START}\nold text\n${README_END}\n\ntail\n`;
  const placeholder = placeholderSection({ resultsDir: 'reproduce' });
  assert.doesNotMatch(placeholder, /\d/, 'no number before the study ran');
  const once = spliceReadme(readme, placeholder);
  assert.equal(once, `# T\n\nintro\n\n${README_START}\n${placeholder}\n${README_END}\n\ntail\n`);
  assert.equal(spliceReadme(once, placeholder), once, 'idempotent');
  assert.equal(renderReadmeSection(null, 'anything', { resultsDir: 'reproduce' }), placeholder, 'no results: the placeholder');
  throwsBadInput(() => spliceReadme('# no markers\n', 'x'), /no <!-- reproduce:start -->/);
  throwsBadInput(() => spliceReadme(`${readme}${README_START}\n`, 'x'), /more than once/);
  // The repository's README holds the block once, so the real study can fill it in.
  const real = readFileSync(join(REPO, 'README.md'), 'utf8');
  assert.ok(spliceReadme(real, placeholder).includes(`${README_START}\n${SECTION_TITLE}\n`));
});

test('the command line: the real study updates README; --quick and --budget-scale go elsewhere', () => {
  const quiet = () => {};
  const real = studyOptions([], '/repo', quiet);
  assert.equal(real.mode, 'run');
  assert.deepEqual([real.opts.out, real.opts.resultsDir, real.opts.readme, real.opts.jobs, real.opts.scale], ['/repo/runs/reproduce', '/repo/reproduce', '/repo/README.md', 1, null]);
  const quick = studyOptions(['--quick', '-j', '2', '--dry-run'], '/repo', quiet);
  assert.equal(quick.mode, 'dry-run');
  assert.deepEqual([quick.opts.out, quick.opts.resultsDir, quick.opts.readme, quick.opts.jobs], ['/repo/runs/reproduce-quick', '/repo/runs/reproduce-quick/results', null, 2]);
  assert.deepEqual(studyOptions(['--budget-scale', '0.5'], '/repo', quiet).opts.scale, { factor: 0.5, quick: false });
  assert.equal(studyOptions(['--no-readme'], '/repo', quiet).opts.readme, null);
  throwsBadInput(() => studyOptions(['--quick', '--budget-scale', '0.5'], '/repo', quiet), /give one/);
  throwsBadInput(() => studyOptions(['-j', '0'], '/repo', quiet), /--jobs 0/);
});

// ---------------------------------------------------------------------------------------------
// End to end, with the stub trainer

/** What the study must report for one optimizer at one seed, worked out from the closed form. */
function expectedRatios(optimizer: 'soap' | 'shampoo', seed: number): { steps: number; wall: number } {
  const adamw = curveOf({ optimizer: { type: 'adamw', lr: TRUTH.adamw.lrStar }, train: { seed, batch_size: 16 } });
  const target = adamw.E + adamw.A * 400 ** -adamw.alpha;
  const c = curveOf({ optimizer: { type: optimizer, lr: TRUTH[optimizer].lrStar, precondition_frequency: 10 }, train: { seed, batch_size: 16 } });
  const steps = (c.A / (target - c.E)) ** (1 / c.alpha);
  return { steps: steps / 400, wall: (steps * c.sps) / (400 * adamw.sps) };
}

const close = (actual: number | null | undefined, expected: number, tol: number, what: string) =>
  assert.ok(actual !== null && actual !== undefined && Math.abs(actual - expected) <= tol * Math.abs(expected), `${what}: ${actual} vs ${expected}`);

test('end to end: the stages run through the sweep machinery, results match the closed form, a rerun skips everything', async () => {
  const dir = tmp();
  const out = join(dir, 'runs');
  const results = join(dir, 'results');
  const readme = join(dir, 'README.md');
  writeFileSync(readme, `# soap-train\n\nbefore\n\n${README_START}\n${README_END}\n\nafter\n`);
  const calls = join(dir, 'calls.txt');
  writeFileSync(calls, '');
  process.env.STUB_CALLS = calls;
  const lines: string[] = [];
  const opts = { root: REPO, out, resultsDir: results, readme, jobs: 2, scale: null, skipBatch: false, trainer: [process.execPath, STUB], log: (l: string) => lines.push(l) };

  assert.equal(dryRun(opts), 0);
  assert.ok(lines.some((l) => /^estimated: .* with -j 2 about/.test(l)), lines.join('\n'));
  assert.equal(existsSync(out), false, 'a dry run writes nothing');
  lines.length = 0;

  assert.equal(await runStudy(opts), 0, lines.join('\n'));
  assert.equal(readFileSync(calls, 'utf8').trim().split('\n').length, 51);
  assert.ok(lines.some((l) => l.startsWith('[stage 2/4 · stage2-family ') && / · ETA /.test(l)), 'progress: stage, runs done, ETA');
  assert.ok(existsSync(join(out, 'stage2-family', 'sweep.yaml')), 'each stage is a soap-train sweep directory');

  const r = JSON.parse(readFileSync(join(results, 'results.json'), 'utf8')) as ReproduceResults;
  assert.equal(r.complete, true);
  assert.deepEqual(Object.fromEntries(Object.entries(r.lr!.best).map(([o, b]) => [o, [b.lr, b.edge]])), { adamw: [3e-3, null], soap: [1e-2, 'highest'], shampoo: [3e-3, null] });
  assert.ok(r.notes.some((n) => /SOAP's best rate 0.01 is the highest of the rates swept \(1e-3, 3e-3, 0.01\)/.test(n)));
  assert.deepEqual(r.study.family_steps, [200, 250, 300, 350, 400]);
  assert.deepEqual(r.study.seeds, [0, 1, 2]);
  assert.deepEqual(r.study.frequencies, [1, 10, 32, 100]);
  assert.equal(r.study.tokens_per_step, 2048);
  assert.equal(r.study.jobs, 2);

  // Headline: per seed, the fit through exact power-law points solves back to the closed form.
  const h = r.headline!;
  assert.deepEqual(h.seeds.map((s) => s.seed), [0, 1, 2]);
  for (const optimizer of ['soap', 'shampoo'] as const) {
    const s = h.summary[optimizer];
    assert.deepEqual(s.methods, ['fit']);
    assert.ok(s.max_abs_residual! < 1e-6, `${optimizer}: exact points, residual ${s.max_abs_residual}`);
    for (const seed of [0, 1, 2]) {
      const want = expectedRatios(optimizer, seed);
      close(s.step_ratio.values.find((v) => v.seed === seed)?.value, want.steps, 1e-5, `${optimizer} seed ${seed} steps`);
      close(s.wall_ratio.values.find((v) => v.seed === seed)?.value, want.wall, 1e-5, `${optimizer} seed ${seed} wall`);
    }
    const mean = [0, 1, 2].reduce((a, seed) => a + expectedRatios(optimizer, seed).steps, 0) / 3;
    close(s.step_ratio.mean, mean, 1e-5, `${optimizer} mean`);
  }
  close(h.summary.soap.step_ratio.values[0].value, 0.64, 1e-3, 'soap seed 0 ≈ 0.64× (hand check: (8 / (1.8 + 8/√400 − 1.7))² / 400)');

  // Frequency: stage 3's runs plus stage 2's full-budget runs as frequency 10.
  const f = r.frequency!;
  assert.deepEqual(f.rows.map((x) => `${x.optimizer}${x.frequency}@${x.sweep}`), [
    'soap1@stage3-frequency', 'soap10@stage2-family', 'soap32@stage3-frequency', 'soap100@stage3-frequency',
    'shampoo1@stage3-frequency', 'shampoo10@stage2-family', 'shampoo32@stage3-frequency', 'shampoo100@stage3-frequency',
  ]);
  assert.deepEqual(f.notes, [], 'the reused runs differ only in the frequency');
  for (const row of f.rows) {
    const c = curveOf({ optimizer: { type: row.optimizer, lr: TRUTH[row.optimizer as 'soap'].lrStar, precondition_frequency: row.frequency }, train: { seed: 0, batch_size: 16 } });
    close(row.final_val_loss, c.E + c.A * 400 ** -c.alpha, 1e-12, `${row.optimizer} f${row.frequency}`);
  }

  // Batch: steps to the target ∝ S(B), so the fit gives B_noise exactly.
  const b = r.batch!;
  close(b.target_loss, 4 - 200 / (S_SCALE * (1 + B_NOISE / 8)), 1e-12, 'target: the batch-8 run’s final loss');
  close(b.fit!.b_noise, B_NOISE, 1e-9, 'B_noise');
  close(b.fit!.s_min, 0.8 * S_SCALE, 1e-9, 'S_min'); // 0.48 at a 120-step half budget, × 200/120
  close(b.study_batch.over_critical, 16 / 12, 1e-9, 'study batch over critical');
  assert.deepEqual(b.doublings.map((d) => [d.from, d.to, Number(d.speedup.toFixed(6))]), [[8, 16, Number((250 / 175).toFixed(6))], [16, 32, Number((175 / 137.5).toFixed(6))]]);

  // The files: RESULTS.md, charts, README section with the reading verbatim.
  const md = readFileSync(join(results, 'RESULTS.md'), 'utf8');
  assert.match(md, /\| SOAP \| 0\.01 \| 0\.\d\d× \(0\.\d\d–0\.\d\d, sd [\d.e-]+, 3 seeds\) \|/);
  for (const file of ['loss-steps.png', 'loss-steps.svg', 'loss-seconds.png', 'loss-seconds.svg']) assert.ok(existsSync(join(results, file)), file);
  const readmeText = readFileSync(readme, 'utf8');
  const reading = readFileSync(join(STUDY, 'READING.md'), 'utf8').trim();
  assert.ok(readmeText.includes(`${SECTION_TITLE}\n`) && readmeText.includes(reading), 'the section and the reading');
  assert.ok(readmeText.startsWith('# soap-train\n\nbefore\n\n') && readmeText.endsWith(`${README_END}\n\nafter\n`), 'outside the markers untouched');
  assert.match(readmeText, /!\[Loss against steps\]\(results\/loss-steps\.png\)/);

  // A rerun: every run completed, so the trainer is not started once, and the files are the same.
  writeFileSync(calls, '');
  lines.length = 0;
  assert.equal(await runStudy(opts), 0, lines.join('\n'));
  assert.equal(readFileSync(calls, 'utf8'), '');
  assert.equal(lines.filter((l) => /completed before, skipped/.test(l)).length, 51);
  assert.equal(readFileSync(readme, 'utf8').replace(/\d{4}-\d\d-\d\d/g, 'DATE'), readmeText.replace(/\d{4}-\d\d-\d\d/g, 'DATE'));
});

test('a stopped study exits 130 with its running run interrupted; the same command continues it', async () => {
  const dir = tmp();
  const calls = join(dir, 'calls.txt');
  writeFileSync(calls, '');
  process.env.STUB_CALLS = calls;
  process.env.STUB_DELAY_MS = '60000';
  const stop = new AbortController();
  // The stub records its call once its SIGTERM handler is in place: stop the study then.
  const stopOnceRecorded = () => {
    const poll = setInterval(() => {
      if (readFileSync(calls, 'utf8').includes('adamw_lr1e-3_f0.5')) {
        clearInterval(poll);
        stop.abort();
      }
    }, 20);
  };
  const lines: string[] = [];
  const opts = {
    root: REPO,
    out: join(dir, 'runs'),
    resultsDir: join(dir, 'results'),
    readme: null,
    jobs: 1,
    scale: null,
    skipBatch: true,
    trainer: [process.execPath, STUB],
    log: (l: string) => {
      lines.push(l);
      if (/\] start adamw_lr1e-3_f0\.5 /.test(l)) stopOnceRecorded();
    },
  };
  try {
    assert.equal(await runStudy({ ...opts, signal: stop.signal }), 130, lines.join('\n'));
  } finally {
    delete process.env.STUB_DELAY_MS;
  }
  assert.ok(lines.some((l) => /adamw_lr1e-3_f0\.5 interrupted/.test(l)), lines.join('\n'));
  assert.ok(lines.at(-1)!.startsWith('stopped: npm run reproduce (the same command) continues'));
  assert.equal(existsSync(join(dir, 'results')), false, 'no results from a stopped study');
  assert.equal(await runStudy(opts), 0);
  const started = readFileSync(calls, 'utf8').trim().split('\n');
  assert.equal(started.length, 48 + 1, 'the 48 runs without stage 0, the interrupted one twice');
  assert.equal(started.filter((c) => c.endsWith('/stage1-lr/adamw_lr1e-3_f0.5')).length, 2);
  const r = JSON.parse(readFileSync(join(dir, 'results', 'results.json'), 'utf8')) as ReproduceResults;
  assert.equal(r.batch, null, '--skip-batch: no stage 0');
  assert.equal(r.complete, true);
  assert.match(readFileSync(join(dir, 'results', 'RESULTS.md'), 'utf8'), /Stage 0 did not run/);
});
