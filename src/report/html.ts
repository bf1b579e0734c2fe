/**
 * report.html: one self-contained page (it opens offline, from a file or an e-mail attachment) with
 * the Vega runtime, the compiled chart specs and their data inlined, the run toggles and log-scale
 * switch, a table of the runs and each run's config differences from the first run.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Spec } from 'vega';
import type { RunStats } from './run-stats.js';
import {
  DASH,
  escapeHtml,
  formatConfigValue,
  formatCount,
  formatDuration,
  formatLoss,
  formatMs,
  formatPercent,
  formatRate,
  formatStatus,
} from './format.js';
import { PAGE_SCRIPT } from './page-script.js';

export interface PageChart {
  id: string;
  title: string;
  linear: Spec;
  /** The log-scale variant, null for charts the log toggle leaves alone. */
  log: Spec | null;
}

export interface PageRun {
  stats: RunStats;
  color: string;
  /** Keys whose values differ from the first run's config (empty for the first run itself). */
  configDiff: { key: string; a: unknown; b: unknown }[];
}

export interface ReportPage {
  /** Rows by dataset name, carried once and attached to every spec whose data names them. */
  datasets: Record<string, readonly unknown[]>;
  generatedAt: Date;
  version: string;
  runs: PageRun[];
  charts: PageChart[];
}

/**
 * The full Vega build (Vega plus its d3 parts, one UMD file defining `vega`). The package exports
 * only its module entry, so the build folder is found from there.
 */
export function vegaRuntimeSource(): string {
  const require = createRequire(import.meta.url);
  return readFileSync(join(dirname(require.resolve('vega')), 'vega.min.js'), 'utf8');
}

/**
 * The spec without the rows of the named datasets (report.html carries each once; the page
 * puts them back before drawing). Other data, such as the derived data_0, stays as compiled.
 */
export function detachDatasets(spec: Spec, names: readonly string[]): Spec {
  return { ...spec, data: (spec.data ?? []).map((d) => (names.includes(d.name) && 'values' in d ? { name: d.name } : d)) };
}

/** Text that is safe inside a <script> element: nothing in it can close the element or open a comment. */
function scriptSafe(js: string): string {
  return js.replace(/<\/script/gi, '<\\/script').replace(/<!--/g, '<\\!--');
}

/** JSON inside <script type="application/json">: `<` escaped, so no value can end the element. */
function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

const STYLE = `
:root { --fg: #1f2328; --muted: #656d76; --line: #d8dee4; --bg: #f6f8fa; --card: #fff; --accent: #4c78a8; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 "DejaVu Sans", -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg); background: var(--bg); }
header.page { padding: 20px 28px 8px; }
header.page h1 { margin: 0 0 4px; font-size: 22px; }
header.page .meta { margin: 0; color: var(--muted); }
nav.controls { position: sticky; top: 0; z-index: 5; display: flex; flex-wrap: wrap; gap: 8px 18px; align-items: center;
  padding: 10px 28px; background: rgba(246, 248, 250, 0.95); border-bottom: 1px solid var(--line); }
nav.controls .group-label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: 0.04em; }
nav.controls label { display: inline-flex; align-items: center; gap: 6px; cursor: pointer; user-select: none; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 3px; flex: none; }
.status { font-size: 11px; padding: 1px 6px; border-radius: 8px; background: #eaeef2; color: var(--muted); white-space: nowrap; }
.status-in_progress { background: #fff3cd; color: #7a5d00; }
.status-interrupted, .status-time_limit { background: #e7f0fb; color: #245; }
.status-failed { background: #fde2e1; color: #8a1c17; }
.status-completed { background: #e6f4ea; color: #1e5631; }
main { padding: 16px 28px 40px; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(600px, 1fr)); gap: 16px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; margin: 0; overflow-x: auto; }
section.card { margin-top: 16px; }
section.card h2 { margin: 0 0 10px; font-size: 16px; }
section.card h3 { margin: 14px 0 6px; font-size: 14px; display: flex; align-items: center; gap: 8px; }
.chart { min-height: 120px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { font-size: 12px; color: var(--muted); font-weight: 600; border-bottom: 2px solid var(--line); white-space: nowrap; }
td.num, th.num { text-align: right; }
td code { font-size: 12px; }
tr.run-hidden { opacity: 0.4; }
.run-name { display: inline-flex; align-items: center; gap: 6px; font-weight: 600; }
.note { color: var(--muted); font-size: 12px; margin: 8px 0 0; }
.errors { margin: 12px 28px 0; padding: 10px 14px; border: 1px solid #e5534b; background: #fde2e1; border-radius: 8px; color: #8a1c17; }
.tooltip { position: fixed; z-index: 10; pointer-events: none; background: rgba(255, 255, 255, 0.97); border: 1px solid var(--line);
  border-radius: 6px; box-shadow: 0 2px 8px rgba(0, 0, 0, 0.15); padding: 6px 8px; font-size: 12px; }
.tooltip th, .tooltip td { border: none; padding: 1px 6px; }
.tooltip th { color: var(--muted); font-weight: normal; text-align: right; }
`;

function runName(run: PageRun): string {
  return `<span class="run-name"><span class="swatch" style="background:${run.color}"></span>${escapeHtml(run.stats.label)}</span>`;
}

const statusBadge = (run: PageRun): string => `<span class="status status-${run.stats.status}">${escapeHtml(formatStatus(run.stats.status))}</span>`;

function runToggles(runs: readonly PageRun[]): string {
  const toggles = runs.map(
    (r) =>
      `<label title="${escapeHtml(r.stats.dir)}"><input type="checkbox" class="run-toggle" data-run="${escapeHtml(r.stats.label)}" checked>` +
      `<span class="swatch" style="background:${r.color}"></span>${escapeHtml(r.stats.label)}</label>`,
  );
  return `<span class="group-label">Runs</span>${toggles.join('')}`;
}

function runsTable(runs: readonly PageRun[]): string {
  const header = [
    ['run', ''],
    ['optimizer', ''],
    ['status', ''],
    ['steps', 'num'],
    ['tokens', 'num'],
    ['training time', 'num'],
    ['final train loss', 'num'],
    ['final val loss', 'num'],
    ['best val loss (step)', 'num'],
    ['tokens/s', 'num'],
    ['ms/step', 'num'],
    ['refresh share', 'num'],
  ];
  const rows = runs.map((r) => {
    const s = r.stats;
    const cells = [
      [runName(r), ''],
      [escapeHtml(s.optimizer), ''],
      [statusBadge(r), ''],
      [`${s.lastStep} / ${s.plannedSteps}`, 'num'],
      [formatCount(s.tokens), 'num'],
      [formatDuration(s.trainSeconds), 'num'],
      [formatLoss(s.finalTrainLoss), 'num'],
      [formatLoss(s.finalValLoss), 'num'],
      [s.bestValLoss ? `${formatLoss(s.bestValLoss.loss)} (${s.bestValLoss.step})` : DASH, 'num'],
      [formatRate(s.tokensPerSecond), 'num'],
      [formatMs(s.stepTime?.total_ms ?? null), 'num'],
      [formatPercent(s.refreshShare), 'num'],
    ];
    return `<tr data-run-row="${escapeHtml(s.label)}">${cells.map(([html, cls]) => `<td${cls ? ` class="${cls}"` : ''}>${html}</td>`).join('')}</tr>`;
  });
  return `<table class="runs"><thead><tr>${header.map(([h, cls]) => `<th${cls ? ` class="${cls}"` : ''}>${h}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function configDiffs(runs: readonly PageRun[]): string {
  const [first, ...rest] = runs;
  const parts = rest.map((r) => {
    const heading = `<h3>${runName(r)}</h3>`;
    if (r.configDiff.length === 0) return `${heading}<p class="note">Same configuration as ${escapeHtml(first.stats.label)}.</p>`;
    const rows = r.configDiff.map(
      (d) => `<tr><td><code>${escapeHtml(d.key)}</code></td><td>${escapeHtml(formatConfigValue(d.a))}</td><td>${escapeHtml(formatConfigValue(d.b))}</td></tr>`,
    );
    return `${heading}<table class="config-diff" data-run="${escapeHtml(r.stats.label)}"><thead><tr><th>key</th><th>${escapeHtml(first.stats.label)}</th><th>${escapeHtml(r.stats.label)}</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
  });
  return `<p class="note">Resolved configs (config.yaml) compared with the first run, ${runName(first)}.</p>${parts.join('')}`;
}

export function reportHtml(page: ReportPage, vegaRuntime: string): string {
  const names = page.runs.map((r) => r.stats.label);
  const title = `soap-train report: ${names.join(', ')}`;
  const hasLog = page.charts.some((c) => c.log !== null);
  const payload = { datasets: page.datasets, charts: page.charts };
  const figures = page.charts.map((c) => `<figure class="card"><div class="chart" id="chart-${escapeHtml(c.id)}" role="img" aria-label="${escapeHtml(c.title)}"></div></figure>`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="soap-train ${escapeHtml(page.version)}">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body data-charts-expected="${page.charts.length}">
<header class="page">
<h1>soap-train report</h1>
<p class="meta">${page.runs.length} run${page.runs.length === 1 ? '' : 's'} · generated ${escapeHtml(page.generatedAt.toISOString().replace('T', ' ').slice(0, 16))} UTC · soap-train ${escapeHtml(page.version)}</p>
</header>
<nav class="controls">
${runToggles(page.runs)}
${hasLog ? '<label style="margin-left:auto"><input type="checkbox" id="log-scale">log-scale loss and gradient norm</label>' : ''}
</nav>
<div id="render-errors" class="errors" hidden><strong>Some charts could not be drawn:</strong><ul></ul></div>
<noscript><p class="errors">The charts need JavaScript; the SVG and PNG files next to this page are the same charts.</p></noscript>
<main>
<section class="charts">
${figures.join('\n')}
</section>
<section class="card">
<h2>Runs</h2>
${runsTable(page.runs)}
<p class="note">Losses are cross-entropy in nats, from the last logged rows (a run in progress shows where it is now). Training time is the training clock: evaluation and checkpoints excluded; tokens/s is tokens over it. ms/step is the average step (data + forward/backward + optimizer + refresh); refresh share is the preconditioner refresh's part of it.</p>
</section>
${page.runs.length > 1 ? `<section class="card">\n<h2>Configuration differences</h2>\n${configDiffs(page.runs)}\n</section>` : ''}
</main>
<script type="application/json" id="report-data">${jsonForScript(payload)}</script>
<script>${scriptSafe(vegaRuntime)}</script>
<script>${scriptSafe(PAGE_SCRIPT)}</script>
</body>
</html>
`;
}
