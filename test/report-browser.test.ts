/**
 * report.html in headless Chromium (`--headless --no-sandbox --disable-gpu`): on the fixture runs
 * (a resumed run, one in progress, two families) every chart draws an SVG with its marks, the page
 * records no errors and logs nothing to the console, the URL fragment's run toggle and log scale
 * take effect, and a screenshot is written. Skipped, saying why, only where no Chromium exists
 * (.ci/run installs Debian's `chromium` where it can).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { dumpDom, findChromium, screenshot } from '../src/report/browser.js';
import { CHARTS } from '../src/report/chart-specs.js';
import { writeReport, type ReportResult } from '../src/report/write-report.js';
import { REPO } from './helpers/tiny-run.js';
import { tempDirs } from './helpers/tmp.js';

const FIXTURES = join(REPO, 'test', 'fixtures', 'runs');
const chromium = findChromium();
const SKIP = chromium
  ? false
  : process.env.CHROMIUM
    ? `$CHROMIUM (${process.env.CHROMIUM}) is not an executable`
    : "no chromium or Chrome on PATH (nor $CHROMIUM): install Debian's `chromium` to run the report's browser test";
const tmp = tempDirs('soap-train-report-browser-');

let report: ReportResult;
let html: string;
before(async () => {
  if (!chromium) return;
  // The folder of fixture runs: all seven, including the resumed and the in-progress one.
  report = await writeReport([FIXTURES], { outDir: join(tmp(), 'report') });
  html = join(report.outDir, 'report.html');
});

/** The element with this id, from its opening tag to the next chart container (or the end of the grid). */
function chartMarkup(dom: string, id: string): string {
  const start = dom.indexOf(`id="chart-${id}"`);
  assert.ok(start >= 0, `chart-${id} is in the page`);
  const tagStart = dom.lastIndexOf('<', start);
  const next = dom.indexOf('<figure', start);
  return dom.slice(tagStart, next < 0 ? dom.indexOf('</section>', start) : next);
}

const bodyAttr = (dom: string, name: string): string | undefined => new RegExp(`<body[^>]*\\s${name}="([^"]*)"`).exec(dom)?.[1];
const linePaths = (markup: string): number =>
  (markup.match(/<g class="mark-line role-mark[^"]*"[^>]*>(.*?)<\/g>/gs) ?? []).reduce((n, g) => n + (g.match(/<path /g)?.length ?? 0), 0);

test('every chart renders in headless Chromium with no errors and a silent console', { skip: SKIP }, () => {
  const run = dumpDom(chromium!, html);
  assert.equal(run.status, 0, run.stderr.slice(-2000));
  const dom = run.stdout;
  assert.equal(bodyAttr(dom, 'data-render-errors'), '0', `render errors: ${/<div id="render-errors".*?<\/div>/s.exec(dom)?.[0]}`);
  assert.equal(bodyAttr(dom, 'data-charts-rendered'), String(CHARTS.length));
  assert.deepEqual(run.consoleMessages, [], 'nothing logged to the console');
  for (const chart of CHARTS) {
    const markup = chartMarkup(dom, chart.id);
    assert.ok(markup.includes('data-rendered="true"'), `${chart.id} rendered`);
    assert.ok(/<svg[^>]*class="marks"/.test(markup), `${chart.id} holds Vega's SVG`);
    assert.ok(markup.includes(`>${chart.title}`), `${chart.id} shows its title`);
  }
  // Seven runs with train and validation losses: 14 curves; one learning-rate curve per run; 4 bars per run.
  assert.equal(linePaths(chartMarkup(dom, 'loss-steps')), 14);
  assert.equal(linePaths(chartMarkup(dom, 'lr')), 7);
  assert.equal(chartMarkup(dom, 'step-time').match(/aria-roledescription="bar"/g)?.length, 28);
  // The table lists every run with its status.
  assert.equal(dom.match(/<tr data-run-row=/g)?.length, 7);
  assert.ok(dom.includes('status-in_progress">in progress<'), 'the in-progress run is marked so');
});

test('the fragment hides a run and switches the loss axes to log scale', { skip: SKIP }, () => {
  const hidden = 'soap-lr2e-3-resumed';
  const run = dumpDom(chromium!, html, { fragment: `hide=${encodeURIComponent(hidden)}&log=1` });
  assert.equal(run.status, 0, run.stderr.slice(-2000));
  const dom = run.stdout;
  assert.equal(bodyAttr(dom, 'data-render-errors'), '0');
  assert.equal(bodyAttr(dom, 'data-charts-rendered'), String(CHARTS.length));
  assert.deepEqual(run.consoleMessages, []);
  for (const chart of CHARTS) assert.ok(chartMarkup(dom, chart.id).includes(`data-scale="${chart.logToggle ? 'log' : 'linear'}"`), chart.id);
  assert.equal(linePaths(chartMarkup(dom, 'loss-steps')), 12, 'the hidden run’s two curves are gone');
  assert.equal(linePaths(chartMarkup(dom, 'lr')), 6);
  assert.ok(dom.includes(`<tr data-run-row="${hidden}" class="run-hidden">`), 'its table row is greyed out');
});

test('a screenshot of the page is written', { skip: SKIP }, () => {
  const png = join(report.outDir, 'screenshot.png');
  const run = screenshot(chromium!, html, png, { width: 1400, height: 2400 });
  assert.equal(run.status, 0, run.stderr.slice(-2000));
  assert.ok(existsSync(png));
  const bytes = readFileSync(png);
  assert.equal(bytes.subarray(1, 4).toString('latin1'), 'PNG');
  assert.deepEqual([bytes.readUInt32BE(16), bytes.readUInt32BE(20)], [1400, 2400]);
  assert.ok(bytes.length > 50_000, `a page with charts, not a blank one (${bytes.length} bytes)`);
});
