/**
 * Vega-Lite spec → Vega spec → SVG (Vega's own renderer, headless) → PNG (resvg). The Vega spec
 * is also what report.html embeds, so the page and the files draw the same chart.
 */
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { SoapTrainError } from '../errors.js';

/** A logger that collects warnings and errors instead of printing them. */
function collectingLogger(warnings: string[], errors: string[]): vega.LoggerInterface {
  // Everything is collected whatever the level; the level is kept only to answer Vega's queries.
  let level: number = vega.Warn;
  const logger: vega.LoggerInterface = {
    level(value?: number) {
      if (value === undefined) return level;
      level = value;
      return logger;
    },
    error(...args: unknown[]) {
      errors.push(args.map((a) => (a instanceof Error ? a.message : String(a))).join(' '));
      return this;
    },
    warn(...args: unknown[]) {
      warnings.push(args.map(String).join(' '));
      return this;
    },
    info() {
      return this;
    },
    debug() {
      return this;
    },
  };
  return logger;
}

/**
 * Vega-Lite compiled to Vega. Its warnings go to `warnings` (our specs should raise none: the
 * tests check), not to the user's terminal.
 */
export function toVega(spec: TopLevelSpec, warnings: string[] = []): vega.Spec {
  const errors: string[] = [];
  const compiled = compile(spec, { logger: collectingLogger(warnings, errors) }).spec;
  if (errors.length > 0) throw new SoapTrainError(`could not compile a chart: ${errors.join('; ')}`, { exitCode: 1 });
  return compiled;
}

/** Vega catches errors in its dataflow and logs them; they are collected and raised here instead. */
export async function renderSvg(vegaSpec: vega.Spec): Promise<string> {
  const errors: string[] = [];
  const view = new vega.View(vega.parse(vegaSpec), { renderer: 'none', logger: collectingLogger([], errors), logLevel: vega.Error });
  try {
    const svg = await view.toSVG();
    if (errors.length > 0) throw new SoapTrainError(`could not draw a chart: ${errors.join('; ')}`, { exitCode: 1 });
    return svg;
  } finally {
    view.finalize();
  }
}

/**
 * The SVG rasterised at `scale` × its size (2: sharp on high-density screens and in READMEs).
 * System fonts are loaded so the axis text renders; the SVG names its font families in order.
 */
export function svgToPng(svg: string, scale = 2): Buffer {
  try {
    const resvg = new Resvg(svg, {
      background: 'white',
      fitTo: { mode: 'zoom', value: scale },
      font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
    });
    return resvg.render().asPng();
  } catch (err) {
    throw new SoapTrainError(`could not rasterise a chart to PNG: ${(err as Error).message}`, { exitCode: 1 });
  }
}

export interface RenderedChart {
  vega: vega.Spec;
  svg: string;
  png: Buffer;
}

export async function renderChart(spec: TopLevelSpec, scale = 2, warnings: string[] = []): Promise<RenderedChart> {
  const vegaSpec = toVega(spec, warnings);
  const svg = await renderSvg(vegaSpec);
  return { vega: vegaSpec, svg, png: svgToPng(svg, scale) };
}
