/**
 * Plain aligned text tables for the terminal (and for pasting into bench/NOTES.md as Markdown).
 */

/** Number formatting: `digits` significant-ish decimals, thousands grouped, '–' for missing. */
export function num(x: number | null | undefined, decimals = 0): string {
  if (x == null || !Number.isFinite(x)) return '–';
  return x.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

/** "median (p10–p90)". */
export function withSpread(median: number, lo: number, hi: number, decimals = 0): string {
  return `${num(median, decimals)} (${num(lo, decimals)}–${num(hi, decimals)})`;
}

/** Text columns left-aligned, everything else right-aligned; `markdown` adds pipes and a rule. */
export function formatTable(headers: string[], rows: string[][], opts: { leftColumns?: number; markdown?: boolean } = {}): string {
  const left = opts.leftColumns ?? 1;
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const cell = (text: string, c: number) => (c < left ? text.padEnd(widths[c]) : text.padStart(widths[c]));
  const line = (cells: string[]) => (opts.markdown ? `| ${cells.map(cell).join(' | ')} |` : cells.map(cell).join('  '));
  const rule = opts.markdown
    ? `|${widths.map((w, c) => (c < left ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`
    : widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(headers), rule, ...rows.map(line)].join('\n');
}
