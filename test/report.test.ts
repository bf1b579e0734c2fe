/**
 * `soap-train report` without a browser: the table's numbers against hand-derived cases and the
 * fixture runs' own files (test/fixtures/runs: a resumed run, one in progress, a family), the
 * charts as drawn (SVG marks, PNG size and text), report.html's self-containment and escaping,
 * report.json, the output-directory rules and the command line.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SoapTrainError } from '../src/errors.js';
import { chartData, thinCurve } from '../src/report/chart-data.js';
import { CHARTS } from '../src/report/chart-specs.js';
import { expandRunDirs, runLabels } from '../src/report/inputs.js';
import { defaultOutDir } from '../src/report/output-dir.js';
import { svgToPng, toVega } from '../src/report/render.js';
import { runStats, stepTimeSplit } from '../src/report/run-stats.js';
import { writeReport, type ReportJson } from '../src/report/write-report.js';
import { readRun, type MetricsRow } from '../src/run/read-run.js';
import { REPO, soapTrain } from './helpers/tiny-run.js';
import { tempDirs } from './helpers/tmp.js';

const FIXTURES = join(REPO, 'test', 'fixtures', 'runs');
const RESUMED = join(FIXTURES, 'soap-lr2e-3-resumed');
const IN_PROGRESS = join(FIXTURES, 'adamw-lr1e-3-inprogress');
const FAMILY = ['soap-8', 'soap-12', 'soap-16'].map((n) => join(FIXTURES, n));
const tmp = tempDirs('soap-train-report-');

function jsonl(file: string): Array<Record<string, number>> {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, number>];
      } catch {
        return []; // the in-progress fixture's torn last line
      }
    });
}
const summaryOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as Record<string, number | string | null>;

/** A PNG's size from its IHDR chunk. */
function pngSize(png: Buffer): { width: number; height: number } {
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

/** The paths of the line marks in a Vega SVG: one per drawn curve. */
function linePaths(svg: string): number {
  const groups = svg.match(/<g class="mark-line role-mark[^"]*"[^>]*>(.*?)<\/g>/gs) ?? [];
  return groups.reduce((n, g) => n + (g.match(/<path /g)?.length ?? 0), 0);
}

function metricsRow(step: number, interval: MetricsRow['interval'], timeMs = { data_ms: 0, fwd_bwd_ms: 0, optim_ms: 0, refresh_ms: 0 }): MetricsRow {
  return { step, tokens: 100 * step, loss: 1, lr: 1e-3, grad_norm: 1, wall_s: step, tokens_per_s: 1, time_ms: timeMs, interval };
}

test('the step-time split averages interval sums per step and takes the refresh out of the optimizer', () => {
  // Two rows of 2 steps each: data 2+2, fwd/bwd 10+14, optim 6+2 of which refresh 4+0 (ms).
  const rows = [
    metricsRow(2, { steps: 2, data_ms: 2, fwd_bwd_ms: 10, optim_ms: 6, refresh_ms: 4 }),
    metricsRow(4, { steps: 2, data_ms: 2, fwd_bwd_ms: 14, optim_ms: 2, refresh_ms: 0 }),
  ];
  const split = stepTimeSplit(rows)!;
  assert.equal(split.steps, 4);
  assert.equal(split.data_ms, 1);
  assert.equal(split.fwd_bwd_ms, 6);
  assert.equal(split.optim_ms, 1, '(6 + 2 − 4) / 4');
  assert.equal(split.refresh_ms, 1);
  assert.equal(split.total_ms, 9);
  // A row without an interval (an older writer) counts as its own step.
  const single = stepTimeSplit([metricsRow(1, undefined, { data_ms: 3, fwd_bwd_ms: 5, optim_ms: 2, refresh_ms: 0.5 })])!;
  assert.deepEqual(single, { steps: 1, data_ms: 3, fwd_bwd_ms: 5, optim_ms: 1.5, refresh_ms: 0.5, total_ms: 10 });
  assert.equal(stepTimeSplit([]), null);
});

test('long curves are thinned to the chart budget, keeping spikes and both ends', () => {
  // 10 000 rows of a smooth decay with one spike (index 5003) and one dip (index 7777).
  const rows = Array.from({ length: 10_000 }, (_, i) => ({ i, v: 5 / Math.sqrt(i + 1) }));
  rows[5003].v = 9;
  rows[7777].v = -1;
  const thin = thinCurve(rows, [(r) => r.v], 1000);
  assert.ok(thin.length <= 1002, `${thin.length} rows`);
  assert.ok(thin.length >= 900, 'about the budget, not far fewer');
  assert.equal(thin[0].i, 0);
  assert.equal(thin.at(-1)!.i, 9999);
  assert.ok(thin.some((r) => r.i === 5003) && thin.some((r) => r.i === 7777), 'the spike and the dip survive');
  for (let k = 1; k < thin.length; k++) assert.ok(thin[k].i > thin[k - 1].i, 'in order, each row once');
  // Within the budget, nothing changes.
  assert.deepEqual(thinCurve(rows.slice(0, 50), [(r) => r.v], 1000), rows.slice(0, 50));
});

test('the table of a resumed run matches its summary.json and reads as one curve', () => {
  const run = readRun(RESUMED);
  const stats = runStats(run, 'r');
  const summary = summaryOf(RESUMED);
  assert.equal(summary.resumed_from_step, 5, 'the fixture is a resumed run');
  assert.equal(stats.status, 'completed');
  assert.equal(stats.lastStep, summary.steps);
  assert.equal(stats.tokens, summary.tokens);
  assert.equal(stats.finalTrainLoss, summary.final_train_loss);
  assert.equal(stats.finalValLoss, summary.final_val_loss);
  assert.equal(stats.bestValLoss?.loss, summary.best_val_loss);
  // The summary rounds tokens/s to 0.1 and the clock to 1 ms.
  assert.ok(Math.abs(stats.tokensPerSecond! - (summary.tokens_per_s as number)) < 1, `${stats.tokensPerSecond} vs ${summary.tokens_per_s}`);
  const metrics = jsonl(join(RESUMED, 'metrics.jsonl'));
  const sum = (key: string) => metrics.reduce((s, r) => s + (r.interval as unknown as Record<string, number>)[key], 0);
  // Step 5 ran in the first attempt after its last row (step 4), so its time was never logged;
  // the resumed attempt's first row (step 6) covers one step. The average is over the other 11.
  assert.deepEqual(metrics.map((r) => (r.interval as unknown as Record<string, number>).steps), [2, 2, 1, 2, 2, 2]);
  assert.equal(stats.stepTime?.steps, 11);
  assert.ok(Math.abs(stats.stepTime!.refresh_ms - sum('refresh_ms') / 11) < 1e-12);
  assert.ok(Math.abs(stats.refreshShare! - sum('refresh_ms') / (sum('data_ms') + sum('fwd_bwd_ms') + sum('optim_ms'))) < 1e-12);

  // One continuous curve: the train points are the file's rows, steps and training clock rising across the resume.
  const train = chartData([{ run, label: 'r', stepTime: stats.stepTime }]).loss.filter((p) => p.series === 'train');
  assert.deepEqual(train.map((p) => p.step), metrics.map((r) => r.step));
  assert.deepEqual(train.map((p) => p.loss), metrics.map((r) => r.loss));
  for (let i = 1; i < train.length; i++) assert.ok(train[i].seconds > train[i - 1].seconds, `clock rises at step ${train[i].step}`);
});

test('a run in progress is reported where it stands: no summary, the torn last row skipped', () => {
  const stats = runStats(readRun(IN_PROGRESS), 'p');
  const metrics = jsonl(join(IN_PROGRESS, 'metrics.jsonl'));
  const evals = jsonl(join(IN_PROGRESS, 'eval.jsonl'));
  assert.equal(existsSync(join(IN_PROGRESS, 'summary.json')), false);
  assert.equal(stats.status, 'in_progress');
  assert.equal(stats.lastStep, 8);
  assert.equal(stats.plannedSteps, 12);
  assert.equal(stats.finalTrainLoss, metrics.at(-1)!.loss);
  assert.equal(stats.finalValLoss, evals.at(-1)!.val_loss);
  assert.deepEqual(stats.bestValLoss, { loss: Math.min(...evals.map((e) => e.val_loss)), step: 8 });
  assert.equal(stats.tokensPerSecond, metrics.at(-1)!.tokens / metrics.at(-1)!.wall_s);
});

test('runs are named by their directory, lengthened only where two would share a name', () => {
  assert.deepEqual(runLabels(['/x/a/seed-1', '/x/b/seed-1', '/x/c']), ['a/seed-1', 'b/seed-1', 'c']);
  assert.deepEqual(runLabels(['/p/q/r', '/s/q/r']), ['p/q/r', 's/q/r']);
  // A folder of runs stands for the runs directly inside it, sorted; the same run twice is read once.
  const expanded = expandRunDirs([FIXTURES, RESUMED]);
  const expected = readdirSync(FIXTURES)
    .filter((n) => existsSync(join(FIXTURES, n, 'config.yaml')))
    .sort()
    .map((n) => join(FIXTURES, n));
  assert.deepEqual(expanded, expected);
  assert.equal(expanded.length, 7);
});

test('a family report: every chart as SVG and PNG, marks for each curve, config differences, report.json', async () => {
  const out = join(tmp(), 'family');
  const result = await writeReport(FAMILY, { outDir: out });
  assert.deepEqual(result.warnings, [], 'Vega-Lite compiles our specs without warnings');
  for (const chart of CHARTS) {
    const svg = readFileSync(join(out, `${chart.id}.svg`), 'utf8');
    assert.match(svg, /^<svg /);
    assert.ok(svg.includes(`>${chart.title}`), `${chart.id} has its title`);
    const width = Number(/width="(\d+(?:\.\d+)?)"/.exec(svg)![1]);
    const height = Number(/height="(\d+(?:\.\d+)?)"/.exec(svg)![1]);
    const png = pngSize(readFileSync(join(out, `${chart.id}.png`)));
    assert.deepEqual(png, { width: Math.round(2 * width), height: Math.round(2 * height) }, `${chart.id}.png is the SVG at 2×`);
  }
  // Three runs, each with train and validation losses: six curves per loss chart; one lr curve per run.
  for (const id of ['loss-steps', 'loss-tokens', 'loss-seconds']) assert.equal(linePaths(readFileSync(join(out, `${id}.svg`), 'utf8')), 6, id);
  assert.equal(linePaths(readFileSync(join(out, 'lr.svg'), 'utf8')), 3);
  // The step-time split: four stacked bars per run.
  assert.equal(readFileSync(join(out, 'step-time.svg'), 'utf8').match(/<path [^>]*aria-roledescription="bar"/g)?.length ?? 0, 12);
  assert.ok(pngSize(readFileSync(join(out, 'overview.png'))).width > 1600, 'overview.png is wide enough for a README');

  const json = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as ReportJson;
  assert.equal(json.generator, 'soap-train report');
  assert.deepEqual(json.runs.map((r) => r.label), ['soap-8', 'soap-12', 'soap-16']);
  // The family's configs differ only in train.steps.
  assert.deepEqual(json.runs.map((r) => r.config_diff), [[], [{ key: 'train.steps', a: 8, b: 12 }], [{ key: 'train.steps', a: 8, b: 16 }]]);
  for (const [i, dir] of FAMILY.entries()) assert.equal(json.runs[i].finalValLoss, summaryOf(dir).final_val_loss);
  for (const file of json.files) assert.ok(existsSync(join(out, file)), file);
});

test('PNG text is drawn with an installed font', (t) => {
  const fontDirs = ['/usr/share/fonts', '/usr/local/share/fonts', '/System/Library/Fonts', 'C:\\Windows\\Fonts'].filter(existsSync);
  if (fontDirs.length === 0) {
    t.skip('no system font directory: resvg has no font to draw text with');
    return;
  }
  // Without a usable font resvg draws no glyphs, and the PNG equals the one with the text removed.
  const withText =
    '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40"><text x="10" y="28" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="20">loss 4.3574</text></svg>';
  const without = withText.replace(/<text.*<\/text>/, '');
  assert.notDeepEqual(svgToPng(withText, 1), svgToPng(without, 1));
});

test('report.html is self-contained, escapes run names and carries each dataset once', async () => {
  // A run whose directory name would break HTML if pasted in raw.
  const runs = tmp();
  const odd = join(runs, 'a<b>&"c"');
  cpSync(RESUMED, odd, { recursive: true });
  const out = join(tmp(), 'page');
  await writeReport([IN_PROGRESS, odd], { outDir: out });
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.doesNotMatch(html, /<(script|link|img)[^>]+(src|href)=["']?(https?:)?\/\//i, 'nothing loaded from the network');
  assert.ok(html.includes('a&lt;b&gt;&amp;&quot;c&quot;'), 'the name is escaped in the markup');
  assert.ok(!html.includes('a<b>&"c"'), 'and nowhere raw');
  const data = /<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html)![1];
  assert.ok(!data.includes('<'), 'no < inside the JSON, so no </script> can end it');
  const payload = JSON.parse(data) as { datasets: Record<string, Array<Record<string, unknown>>>; charts: Array<{ id: string; linear: { data: Array<Record<string, unknown>>; signals?: Array<{ name: string }> }; log: { scales: Array<{ name: string; type?: string }> } | null }> };
  assert.deepEqual(payload.charts.map((c) => c.id), CHARTS.map((c) => c.id));
  assert.equal(html.match(/<div class="chart" id="chart-/g)?.length, CHARTS.length, 'one container per chart');
  // The loss rows are carried once (not once per chart and variant) and hold both runs' files.
  const inProgressRows = jsonl(join(IN_PROGRESS, 'metrics.jsonl')).length + jsonl(join(IN_PROGRESS, 'eval.jsonl')).length;
  const oddRows = jsonl(join(odd, 'metrics.jsonl')).length + jsonl(join(odd, 'eval.jsonl')).length;
  assert.equal(payload.datasets.loss.length, inProgressRows + oddRows);
  assert.equal(payload.datasets.loss.filter((r) => r.run === 'a<b>&"c"').length, oddRows);
  for (const chart of payload.charts) {
    for (const d of chart.linear.data) assert.ok(!('values' in d && Array.isArray(d.values) && d.values.length > 10), `${chart.id}: rows left in the spec`);
    assert.ok(chart.linear.signals?.some((s) => s.name === 'hiddenRuns'), `${chart.id} can hide runs`);
  }
  const logSpec = payload.charts.find((c) => c.id === 'loss-steps')!.log!;
  assert.equal(logSpec.scales.find((s) => s.name === 'y')?.type, 'log');
  assert.equal(payload.charts.find((c) => c.id === 'lr')!.log, null, 'the learning rate has no log variant');
  // The Vega runtime is inlined.
  assert.ok(html.length > 400_000 && html.includes('vega'), `report.html is ${html.length} bytes`);
});

test('the interactive specs hover and hide runs; the files do not', () => {
  const data = chartData([]);
  const interactive = toVega(CHARTS[0].spec(data, { interactive: true, logY: false }));
  const fixed = toVega(CHARTS[0].spec(data, { interactive: false, logY: false }));
  const names = (spec: typeof fixed) => (spec.signals ?? []).map((s) => s.name);
  assert.ok(names(interactive).includes('hiddenRuns'));
  assert.ok(names(interactive).some((n) => n.startsWith('hover')));
  assert.ok(!names(fixed).includes('hiddenRuns'));
  assert.match(JSON.stringify(interactive.marks), /"tooltip"/);
  assert.doesNotMatch(JSON.stringify(fixed.marks), /"tooltip"/);
});

test('output directory: one run reports into <run>/report, several into reports/<stamp>; foreign directories are refused', async () => {
  const now = new Date(2026, 0, 2, 3, 4, 5);
  assert.equal(defaultOutDir(['/r/a'], '/cwd', now), join('/r/a', 'report'));
  assert.equal(defaultOutDir(['/r/a', '/r/b'], '/cwd', now), join('/cwd', 'reports', '20260102-030405'));

  const runs = tmp();
  const run = join(runs, 'in-progress');
  cpSync(IN_PROGRESS, run, { recursive: true });
  const first = await writeReport([run]);
  assert.equal(first.outDir, join(run, 'report'));
  assert.ok(existsSync(join(run, 'report', 'report.html')));
  // A second report overwrites the first (the run went on), and the run still reads as a run.
  writeFileSync(join(run, 'metrics.jsonl'), readFileSync(join(run, 'metrics.jsonl'), 'utf8').replace(/\n[^\n]*$/, '\n'));
  const second = await writeReport([run]);
  assert.equal(second.outDir, first.outDir);
  assert.equal(second.runs[0].lastStep, 8);

  const foreign = tmp();
  writeFileSync(join(foreign, 'notes.txt'), 'mine');
  await assert.rejects(writeReport([run], { outDir: foreign }), (err: unknown) => err instanceof SoapTrainError && err.exitCode === 2 && /refusing/.test(err.message));
  assert.deepEqual(readdirSync(foreign), ['notes.txt'], 'nothing written');
  const file = join(foreign, 'notes.txt');
  await assert.rejects(writeReport([run], { outDir: file }), /not a directory/);
});

test('bad run arguments are bad input naming the directory', async () => {
  const missing = join(tmp(), 'no-such-run');
  await assert.rejects(writeReport([missing]), (err: unknown) => err instanceof SoapTrainError && err.exitCode === 2 && err.file === missing);
  const notRun = tmp();
  mkdirSync(join(notRun, 'empty'));
  await assert.rejects(writeReport([notRun]), (err: unknown) => err instanceof SoapTrainError && /config\.yaml/.test(err.oneLine()));
  await assert.rejects(writeReport([]), /no run directories/);
});

test('soap-train report on the command line: prints where the files went; exit 2 for a missing run', () => {
  const out = join(tmp(), 'cli');
  const ok = soapTrain(['report', RESUMED, IN_PROGRESS, '--out', out], REPO);
  assert.equal(ok.status, 0, ok.stderr);
  assert.ok(ok.stdout.includes(out), ok.stdout);
  assert.match(ok.stdout, /report on 2 runs/);
  assert.ok(existsSync(join(out, 'report.html')) && existsSync(join(out, 'overview.png')));
  const bad = soapTrain(['report', join(out, 'nope')], REPO);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^soap-train: error: .*no such run directory/m);
});
