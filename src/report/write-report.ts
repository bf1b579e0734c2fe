/**
 * `soap-train report`'s work: read the runs, draw every chart as SVG and PNG (plus an overview
 * PNG for READMEs and slides), write report.html and report.json. Nothing here prints; the
 * command says where the files went.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Spec } from 'vega';
import { configDiff, readRuns } from '../run/read-run.js';
import { packageVersion } from '../run/manifest.js';
import { chartData } from './chart-data.js';
import { CHARTS, DATASETS, overviewSpec, runColor } from './chart-specs.js';
import { detachDatasets, reportHtml, vegaRuntimeSource, type PageChart, type PageRun } from './html.js';
import { expandRunDirs, runLabels } from './inputs.js';
import { defaultOutDir, prepareOutDir, REPORT_GENERATOR, REPORT_JSON } from './output-dir.js';
import { renderChart, toVega } from './render.js';
import { runStats, type RunStats } from './run-stats.js';

export interface ReportOptions {
  /** Output directory; default: `<run>/report/` for one run, `reports/<date>-<time>/` for several. */
  outDir?: string;
  /** Pixel density of the PNGs (2: sharp on high-density screens). */
  pngScale?: number;
  /** For reproducible output in tests. */
  now?: Date;
}

export interface ReportResult {
  outDir: string;
  /** Paths of the files written, relative to outDir. */
  files: string[];
  runs: RunStats[];
  /** Vega-Lite warnings while compiling the charts (expected: none). */
  warnings: string[];
}

/** report.json's shape: the table's numbers and config differences, for scripts. */
export interface ReportJson {
  generator: typeof REPORT_GENERATOR;
  version: string;
  generated_at: string;
  runs: Array<RunStats & { config_diff: { key: string; a: unknown; b: unknown }[] }>;
  files: string[];
}

export async function writeReport(runArgs: readonly string[], opts: ReportOptions = {}): Promise<ReportResult> {
  const now = opts.now ?? new Date();
  const dirs = expandRunDirs(runArgs);
  const records = readRuns(dirs);
  const labels = runLabels(dirs);
  const stats = records.map((run, i) => runStats(run, labels[i]));
  const data = chartData(records.map((run, i) => ({ run, label: labels[i], stepTime: stats[i].stepTime })));
  const outDir = prepareOutDir(opts.outDir ?? defaultOutDir(dirs, process.cwd(), now));
  const scale = opts.pngScale ?? 2;
  const warnings: string[] = [];
  const files: string[] = [];
  const write = (name: string, content: string | Buffer) => {
    writeFileSync(join(outDir, name), content);
    files.push(name);
  };

  const diffs = records.map((run) => (run === records[0] ? [] : configDiff(records[0].config, run.config)));
  const version = packageVersion();
  // report.json goes first: it marks the directory as a report's (output-dir.ts), so a report
  // that fails half-way can be rerun into the same directory.
  const planned = [...CHARTS.flatMap((c) => [`${c.id}.svg`, `${c.id}.png`]), 'overview.svg', 'overview.png', 'report.html', REPORT_JSON];
  const json: ReportJson = {
    generator: REPORT_GENERATOR,
    version,
    generated_at: now.toISOString(),
    runs: stats.map((s, i) => ({ ...s, config_diff: diffs[i] })),
    files: planned,
  };
  write(REPORT_JSON, `${JSON.stringify(json, null, 2)}\n`);

  const datasetNames = Object.values(DATASETS);
  const forPage = (spec: Spec) => detachDatasets(spec, datasetNames);
  const pageCharts: PageChart[] = [];
  for (const chart of CHARTS) {
    const drawn = await renderChart(chart.spec(data, { interactive: false, logY: false }), scale, warnings);
    write(`${chart.id}.svg`, drawn.svg);
    write(`${chart.id}.png`, drawn.png);
    pageCharts.push({
      id: chart.id,
      title: chart.title,
      linear: forPage(toVega(chart.spec(data, { interactive: true, logY: false }), warnings)),
      log: chart.logToggle ? forPage(toVega(chart.spec(data, { interactive: true, logY: true }), warnings)) : null,
    });
  }
  const overview = await renderChart(overviewSpec(data), scale, warnings);
  write('overview.svg', overview.svg);
  write('overview.png', overview.png);

  const pageRuns: PageRun[] = stats.map((s, i) => ({ stats: s, color: runColor(i), configDiff: diffs[i] }));
  write(
    'report.html',
    reportHtml(
      { datasets: { [DATASETS.loss]: data.loss, [DATASETS.train]: data.train, [DATASETS.stepTime]: data.stepTime }, generatedAt: now, version, runs: pageRuns, charts: pageCharts },
      vegaRuntimeSource(),
    ),
  );
  return { outDir, files, runs: stats, warnings };
}
