/**
 * The report's charts as Vega-Lite specs: loss (train and validation) against steps, tokens and
 * training seconds, learning rate, gradient norm, and the step-time split per run. Each chart has
 * a static variant (the SVG/PNG files) and an interactive one (report.html: hover values, a
 * `hiddenRuns` signal that the page's run toggles set); charts whose values span decades also
 * have a log-scale variant, since Vega cannot switch a scale's type with a signal.
 */
import type { Config, TopLevelSpec } from 'vega-lite';
import { STEP_PHASES, type ChartData } from './chart-data.js';

export interface ChartOptions {
  /** Hover tooltips and the `hiddenRuns` filter, for the HTML page. */
  interactive: boolean;
  /** Logarithmic y axis (only charts with `logToggle`). */
  logY: boolean;
}

export interface ChartDef {
  /** File stem of the SVG/PNG and the id of the chart's container in report.html. */
  id: string;
  title: string;
  /** Whether the page's log-scale toggle applies. */
  logToggle: boolean;
  spec(data: ChartData, opts: ChartOptions): TopLevelSpec;
}

/** One sub-chart of a concatenation (the overview): any spec without the top-level-only fields. */
type SubSpec = Extract<TopLevelSpec, { vconcat: unknown }>['vconcat'][number];

// Fonts listed so that the SVG and PNG find one that is installed: DejaVu on Linux, Helvetica on
// macOS, Arial on Windows; the generic family last.
export const FONT_FAMILY = 'DejaVu Sans, Helvetica, Arial, Liberation Sans, sans-serif';

/** Tableau 10: runs are coloured by their position in the report, the same in every chart and the page's tables. */
export const RUN_COLORS = ['#4c78a8', '#f58518', '#e45756', '#72b7b2', '#54a24b', '#eeca3b', '#b279a2', '#ff9da6', '#9d755d', '#bab0ac'];
const PHASE_COLORS = ['#bab0ac', '#4c78a8', '#f58518', '#e45756'];

export const runColor = (index: number): string => RUN_COLORS[index % RUN_COLORS.length];

const WIDTH = 460;
/** Vega-Lite's default gap between concatenated charts. */
const CONCAT_SPACING = 20;
const HEIGHT = 260;

export const CHART_CONFIG: Config = {
  font: FONT_FAMILY,
  background: 'white',
  padding: 8,
  view: { stroke: '#d0d0d0' },
  axis: { gridColor: '#ececec', domainColor: '#888', tickColor: '#888', labelColor: '#333', titleColor: '#333', titleFontWeight: 'normal', titleFontSize: 12, labelFontSize: 11 },
  title: { fontSize: 14, fontWeight: 'bold', anchor: 'start', color: '#222', offset: 10 },
  legend: { titleFontSize: 11, titleFontWeight: 'normal', titleColor: '#555', labelFontSize: 11, labelLimit: 240 },
  line: { strokeWidth: 1.8 },
};

/**
 * Named datasets: the compiled Vega specs name their data after these, so report.html can carry
 * each dataset once however many charts (and log variants) draw it.
 */
export const DATASETS = { loss: 'loss', train: 'train', stepTime: 'step_time' } as const;

/** The page sets this signal to the labels of the runs switched off. */
export const HIDDEN_RUNS_SIGNAL = 'hiddenRuns';

const hiddenRunsParam = { name: HIDDEN_RUNS_SIGNAL, value: [] as string[] };
const hiddenRunsFilter = { filter: `indexof(${HIDDEN_RUNS_SIGNAL}, datum.run) < 0` };

/** The run colour channel: a fixed domain, so a run keeps its colour when others are hidden. */
function runColorEncoding(runs: readonly string[]) {
  return {
    field: 'run',
    type: 'nominal' as const,
    title: 'run',
    scale: { domain: [...runs], range: runs.map((_, i) => runColor(i)) },
  };
}

function yScale(logY: boolean) {
  // Losses start far from zero: a zero-based axis would flatten the interesting part.
  return logY ? { type: 'log' as const, nice: false } : { zero: false };
}

interface TooltipField {
  field: string;
  title: string;
  format?: string;
  type?: 'quantitative' | 'nominal';
}

/**
 * Invisible points over a line chart; the one nearest the pointer (Voronoi) shows, with its
 * values as a tooltip, so hovering anywhere near a curve reads it.
 */
function hoverLayer(tooltip: readonly TooltipField[]) {
  return {
    params: [{ name: 'hover', select: { type: 'point' as const, on: 'pointerover', nearest: true, clear: 'pointerout' } }],
    mark: { type: 'point' as const, filled: true, size: 70 },
    encoding: {
      opacity: { condition: { param: 'hover', empty: false, value: 1 }, value: 0 },
      tooltip: tooltip.map((t) => ({ type: t.type ?? ('quantitative' as const), ...t })),
    },
  };
}

// On the page a chart fills its card (legend included) and follows the window's width; the files
// have a fixed size.
const top = (title: string, interactive: boolean) => ({
  $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
  title,
  width: interactive ? ('container' as const) : WIDTH,
  height: HEIGHT,
  config: CHART_CONFIG,
  ...(interactive ? { params: [hiddenRunsParam] } : {}),
});

// Token counts grow into the billions: SI suffixes, with B for billions as people say it.
const TOKENS_LABEL = "replace(format(datum.value, '~s'), 'G', 'B')";

interface LossAxis {
  field: 'step' | 'tokens' | 'seconds';
  title: string;
  axis?: { labelExpr?: string; tickMinStep?: number; format?: string };
}

// Steps are whole: no 2.5 tick on a short run; 12k rather than 12,000 on a long one (each label
// formatted alone: an axis format would give every label the largest tick's prefix, "0k").
const STEP_AXIS = { tickMinStep: 1, labelExpr: "format(datum.value, '~s')" };

const LOSS_TOOLTIP: TooltipField[] = [
  { field: 'run', title: 'run', type: 'nominal' },
  { field: 'series', title: 'loss', type: 'nominal' },
  { field: 'step', title: 'step' },
  { field: 'tokens', title: 'tokens', format: ',' },
  { field: 'seconds', title: 'training s', format: ',.1f' },
  { field: 'loss', title: 'value', format: '.4f' },
];

function lossChart(title: string, x: LossAxis) {
  return (data: ChartData, opts: ChartOptions): TopLevelSpec => ({
    ...top(title, opts.interactive),
    datasets: { [DATASETS.loss]: data.loss },
    data: { name: DATASETS.loss },
    transform: opts.interactive ? [hiddenRunsFilter] : [],
    encoding: {
      x: { field: x.field, type: 'quantitative', title: x.title, ...(x.axis ? { axis: x.axis } : {}) },
      y: { field: 'loss', type: 'quantitative', title: 'loss (cross-entropy, nats)', scale: yScale(opts.logY) },
      color: runColorEncoding(data.runs),
    },
    layer: [
      {
        mark: { type: 'line' },
        encoding: {
          strokeDash: { field: 'series', type: 'nominal', title: 'loss', scale: { domain: ['train', 'validation'], range: [[1, 0], [5, 3]] } },
        },
      },
      // Evaluations are sparse: mark each one so a two-point validation curve still reads.
      { transform: [{ filter: "datum.series === 'validation'" }], mark: { type: 'point', filled: true, size: 26 } },
      ...(opts.interactive ? [hoverLayer(LOSS_TOOLTIP)] : []),
    ],
  });
}

/** `fromZero`: the learning rate reads as a fraction of its peak; a gradient norm's interesting part is far from zero. */
function scalarChart(title: string, field: 'lr' | 'grad_norm', yTitle: string, format: string, fromZero: boolean) {
  return (data: ChartData, opts: ChartOptions): TopLevelSpec => ({
    ...top(title, opts.interactive),
    datasets: { [DATASETS.train]: data.train },
    data: { name: DATASETS.train },
    // A log axis has no zero (a clipped-to-zero gradient or a zero warmup lr is left out there).
    transform: [...(opts.interactive ? [hiddenRunsFilter] : []), ...(opts.logY ? [{ filter: `datum.${field} > 0` }] : [])],
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'step', axis: STEP_AXIS },
      y: { field, type: 'quantitative', title: yTitle, scale: fromZero && !opts.logY ? { zero: true } : yScale(opts.logY), axis: { format: '~g' } },
      color: runColorEncoding(data.runs),
    },
    layer: [
      { mark: { type: 'line' } },
      ...(opts.interactive
        ? [hoverLayer([{ field: 'run', title: 'run', type: 'nominal' }, { field: 'step', title: 'step' }, { field, title: yTitle, format }])]
        : []),
    ],
  });
}

function stepTimeChart(data: ChartData, opts: ChartOptions): TopLevelSpec {
  const phases = STEP_PHASES.map((p) => p.label);
  return {
    ...top('Step time split (average per step)', opts.interactive),
    // A fixed height of 30 px per bar rather than Vega-Lite's {step: 30}, which cannot combine
    // with the page's container width (Vega-Lite would warn and drop part of the autosize).
    height: 30 * Math.max(1, data.runs.length),
    datasets: { [DATASETS.stepTime]: data.stepTime },
    data: { name: DATASETS.stepTime },
    transform: opts.interactive ? [hiddenRunsFilter] : [],
    mark: { type: 'bar', tooltip: opts.interactive },
    encoding: {
      y: { field: 'run', type: 'nominal', title: null, sort: [...data.runs], axis: { labelLimit: 240 } },
      x: { field: 'ms', type: 'quantitative', title: 'milliseconds per step', stack: 'zero' },
      color: { field: 'phase', type: 'nominal', title: 'phase', scale: { domain: phases, range: PHASE_COLORS }, sort: phases },
      order: { field: 'order', type: 'quantitative' },
      ...(opts.interactive
        ? {
            tooltip: [
              { field: 'run', type: 'nominal', title: 'run' },
              { field: 'phase', type: 'nominal', title: 'phase' },
              { field: 'ms', type: 'quantitative', title: 'ms per step', format: ',.1f' },
              { field: 'share', type: 'quantitative', title: 'share of step', format: '.1%' },
            ],
          }
        : {}),
    },
  };
}

export const CHARTS: readonly ChartDef[] = [
  { id: 'loss-steps', title: 'Loss vs steps', logToggle: true, spec: lossChart('Loss vs steps', { field: 'step', title: 'step', axis: STEP_AXIS }) },
  { id: 'loss-tokens', title: 'Loss vs tokens', logToggle: true, spec: lossChart('Loss vs tokens', { field: 'tokens', title: 'tokens', axis: { labelExpr: TOKENS_LABEL } }) },
  {
    id: 'loss-seconds',
    title: 'Loss vs training time',
    logToggle: true,
    spec: lossChart('Loss vs training time', { field: 'seconds', title: 'training seconds (evaluation and checkpoints excluded)' }),
  },
  { id: 'lr', title: 'Learning rate', logToggle: false, spec: scalarChart('Learning rate', 'lr', 'learning rate', '.3e', true) },
  { id: 'grad-norm', title: 'Gradient norm', logToggle: true, spec: scalarChart('Gradient norm', 'grad_norm', 'gradient norm', '.4g', false) },
  { id: 'step-time', title: 'Step time split', logToggle: false, spec: stepTimeChart },
];

/** A top-level spec as a sub-chart of a concatenation (its config, schema and datasets move to the top). */
function asSubSpec(spec: TopLevelSpec): SubSpec {
  const { $schema: _schema, config: _config, datasets: _datasets, ...rest } = spec;
  return rest as SubSpec;
}

/**
 * One picture for a README or a slide: loss against steps and against training time side by
 * side, the step-time split below. The step-time colours are phases, not runs, so each row keeps
 * its own colour scale (and the loss-style legend stays with the loss charts).
 */
export function overviewSpec(data: ChartData): TopLevelSpec {
  const chart = (id: string) => asSubSpec(CHARTS.find((c) => c.id === id)!.spec(data, { interactive: false, logY: false }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config: CHART_CONFIG,
    datasets: { [DATASETS.loss]: data.loss, [DATASETS.stepTime]: data.stepTime },
    vconcat: [{ hconcat: [chart('loss-steps'), chart('loss-seconds')] }, { ...chart('step-time'), width: 2 * WIDTH + CONCAT_SPACING }],
    resolve: { scale: { color: 'independent', strokeDash: 'independent' }, legend: { color: 'independent', strokeDash: 'independent' } },
  };
}
