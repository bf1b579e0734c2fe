/**
 * Number formats shared by RESULTS.md and the README section, so the two always print a value
 * the same way.
 */
import { formatSeconds, formatSteps } from '../../src/compare/index.js';
import { formatNumber } from '../../src/sweep/naming.js';
import type { Spread } from './headline.js';

export { formatSeconds, formatSteps };

export const DASH = '—';

/** A learning rate as run names show it: 0.003 → 3e-3. */
export const fmtLr = (lr: number | null | undefined): string => (lr === null || lr === undefined ? DASH : formatNumber(lr));

export const fmtLoss = (v: number | null | undefined): string => (v === null || v === undefined || !Number.isFinite(v) ? DASH : v.toFixed(4));

export const fmtRatio = (v: number | null | undefined): string => (v === null || v === undefined ? DASH : `${v.toFixed(2)}×`);

/** 12345 → "12,345"; fractional values keep `digits` decimals. */
export const fmtInt = (v: number): string => Math.round(v).toLocaleString('en-US');

/** 460288 → "0.46M", 12345 → "12.3k". */
export function fmtCount(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  return String(v);
}

export const fmtResidual = (v: number | null | undefined): string => (v === null || v === undefined ? DASH : v.toExponential(2));

/** Seeds in words: "3 seeds", "1 seed". */
const seedsWord = (n: number) => `${n} seed${n === 1 ? '' : 's'}`;

/**
 * A quantity over seeds: "0.70× (0.66–0.74, sd 0.040, 3 seeds)"; one seed: "0.70× (1 seed)".
 * `value` formats the mean, `range` the min and max (default: as the mean).
 */
export function fmtSpread(s: Spread, value: (v: number) => string, range: (v: number) => string = value): string {
  if (s.n === 0 || s.mean === null) return DASH;
  if (s.n === 1) return `${value(s.mean)} (${seedsWord(1)})`;
  return `${value(s.mean)} (${range(s.min!)}–${range(s.max!)}, sd ${s.std!.toPrecision(2)}, ${seedsWord(s.n)})`;
}

export const ratioSpread = (s: Spread): string => fmtSpread(s, (v) => `${v.toFixed(2)}×`, (v) => v.toFixed(2));

/** Markdown table from a header and rows; `|` in cells is escaped. */
export function mdTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  const line = (r: readonly string[]) => `| ${r.map(esc).join(' | ')} |`;
  return [line(header), `|${header.map(() => '---').join('|')}|`, ...rows.map(line)].join('\n');
}

/** A paragraph broken at spaces into lines of at most `width` characters (the README's style). */
export function wrap(text: string, width = 100): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines.join('\n');
}

/** Display names of the optimizers. */
export const OPTIMIZER_NAMES: Record<string, string> = { adamw: 'AdamW', soap: 'SOAP', shampoo: 'Shampoo' };
export const optimizerName = (type: string): string => OPTIMIZER_NAMES[type] ?? type;
