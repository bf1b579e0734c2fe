/**
 * The study's two charts, drawn by `soap-train report`'s own chart specs and renderer
 * (src/report): loss against steps and against training seconds, for the headline runs of one
 * seed at the full budget. SVG and PNG of each go next to results.json.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chartData } from '../../src/report/chart-data.js';
import { CHARTS } from '../../src/report/chart-specs.js';
import { renderChart } from '../../src/report/render.js';
import type { RunRecord } from '../../src/run/read-run.js';

export const CHART_FILES = { loss_steps: 'loss-steps', loss_seconds: 'loss-seconds' } as const;

/** Report chart id for each of ours. */
const CHART_IDS: Record<keyof typeof CHART_FILES, string> = { loss_steps: 'loss-steps', loss_seconds: 'loss-seconds' };

/**
 * Draws both charts of `runs` (labelled `labels`) into `dir`; returns the PNG file names (what
 * Markdown embeds). Vega-Lite warnings, if any, are returned for the caller to print.
 */
export async function writeCharts(dir: string, runs: readonly { run: RunRecord; label: string }[]): Promise<{ files: { loss_steps: string; loss_seconds: string }; warnings: string[] }> {
  const data = chartData(runs.map((r) => ({ run: r.run, label: r.label, stepTime: null })));
  const warnings: string[] = [];
  const files = { loss_steps: '', loss_seconds: '' };
  for (const key of Object.keys(CHART_FILES) as (keyof typeof CHART_FILES)[]) {
    const chart = CHARTS.find((c) => c.id === CHART_IDS[key]);
    if (!chart) throw new Error(`src/report has no chart ${CHART_IDS[key]}`);
    const drawn = await renderChart(chart.spec(data, { interactive: false, logY: false }), 2, warnings);
    writeFileSync(join(dir, `${CHART_FILES[key]}.svg`), drawn.svg);
    writeFileSync(join(dir, `${CHART_FILES[key]}.png`), drawn.png);
    files[key] = `${CHART_FILES[key]}.png`;
  }
  return { files, warnings };
}
