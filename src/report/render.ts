/**
 * Vega-Lite spec → Vega spec → SVG (Vega's own renderer, headless) → PNG (resvg). The Vega spec
 * is also what report.html embeds, so the page and the files draw the same chart.
 */
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { SoapTrainError } from '../errors.js';

/** A logger that collects warnings instead of printing them, and turns errors into exceptions. */
function collectingLogger(warnings: string[]): vega.LoggerInterface {
  const logger: vega.LoggerInterface = {
    level: () => logger,
    error(...args: unknown[]) {
      throw new Error(args.map(String).join(' '));
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
  return compile(spec, { logger: collectingLogger(warnings) }).spec;
}

export async function renderSvg(vegaSpec: vega.Spec): Promise<string> {
  const view = new vega.View(vega.parse(vegaSpec), { renderer: 'none', logLevel: vega.Error });
  try {
    return await view.toSVG();
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
