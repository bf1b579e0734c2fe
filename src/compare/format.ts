/**
 * The compare result as text: an aligned table for the terminal and the same table in Markdown,
 * one row per family (per run where the crossing method is used), followed by the fitted curves
 * and the notes.
 */
import type { CompareResult, CompareRow } from './compare.js';

const HEADERS = ['runs', 'optimizer', 'status', 'method', 'steps to target', 'wall-clock to target', 'steps vs baseline', 'wall-clock vs baseline'];

/** Steps: fractional below 1000 (fits and interpolated crossings are not whole), grouped above. */
export function formatSteps(steps: number): string {
  return steps < 1000 ? steps.toFixed(1) : Math.round(steps).toLocaleString('en-US');
}

export function formatSeconds(s: number): string {
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(2)} h`;
}

/** 0.58 → "0.58× (−42 % steps)"; 1.25 → "1.25× (+25 % steps)". */
export function formatRatio(r: number | null, what: string): string {
  if (r === null) return '—';
  const percent = Math.round((r - 1) * 100);
  const signed = percent < 0 ? `−${-percent}` : percent > 0 ? `+${percent}` : '±0';
  return `${r.toFixed(2)}× (${signed} % ${what})`;
}

function unreachable(row: CompareRow): string {
  return row.method === 'fit' ? 'never (below E)' : 'not reached';
}

function statusCell(row: CompareRow): string {
  return [...new Set(row.status)].map((s) => s.replace('_', ' ')).join(', ');
}

function cells(result: CompareResult, row: CompareRow): string[] {
  return [
    row.runs.map((name) => (name === result.baseline.run && row.includes_baseline ? `${name} (baseline)` : name)).join(', '),
    row.optimizer,
    statusCell(row),
    row.method,
    row.steps_to_target === null ? unreachable(row) : formatSteps(row.steps_to_target),
    row.wall_s_to_target === null ? (row.steps_to_target === null ? unreachable(row) : '—') : formatSeconds(row.wall_s_to_target),
    formatRatio(row.step_ratio, 'steps'),
    formatRatio(row.wall_ratio, 'time'),
  ];
}

function targetLine(result: CompareResult): string {
  const b = result.baseline;
  return `target: val loss ${b.target_loss.toFixed(4)}, the final of baseline ${b.run} (step ${b.steps}, ${formatSeconds(b.wall_s)} training clock)`;
}

function fitLines(result: CompareResult): string[] {
  return result.results
    .filter((row) => row.fit !== null)
    .map((row) => {
      const f = row.fit!;
      return `fit ${row.runs.join(', ')}: L(n) = ${f.E.toFixed(4)} + ${f.A.toPrecision(4)}·n^−${f.alpha.toFixed(4)}, max |residual| ${f.max_abs_residual.toExponential(2)}`;
    });
}

function noteLines(result: CompareResult): string[] {
  // A family's note repeats on each of its crossing rows; say it once.
  const notes = new Map<string, string[]>();
  for (const row of result.results) {
    if (!row.note) continue;
    notes.set(row.note, [...(notes.get(row.note) ?? []), ...row.runs]);
  }
  return [...notes].map(([note, runs]) => `${runs.join(', ')}: ${note}`);
}

/** The aligned terminal table. */
export function formatCompareTable(result: CompareResult): string {
  const rows = [HEADERS, ...result.results.map((row) => cells(result, row))];
  const widths = HEADERS.map((_, col) => Math.max(...rows.map((r) => [...r[col]].length)));
  const line = (r: string[]) => r.map((cell, col) => cell.padEnd(widths[col] + cell.length - [...cell].length)).join('  ').trimEnd();
  const rule = widths.map((w) => '─'.repeat(w)).join('  ');
  return [targetLine(result), '', line(rows[0]), rule, ...rows.slice(1).map(line), '', ...fitLines(result), ...noteLines(result).map((n) => `note: ${n}`)]
    .join('\n')
    .replace(/\n+$/, '')
    .concat('\n');
}

const escapeMarkdown = (cell: string) => cell.replace(/\|/g, '\\|');

/** The same table in Markdown, with the fits and notes as a list. */
export function formatCompareMarkdown(result: CompareResult): string {
  const row = (r: string[]) => `| ${r.map(escapeMarkdown).join(' | ')} |`;
  const extras = [...fitLines(result), ...noteLines(result).map((n) => `note: ${n}`)];
  return [
    targetLine(result),
    '',
    row(HEADERS),
    `|${HEADERS.map(() => '---').join('|')}|`,
    ...result.results.map((r) => row(cells(result, r))),
    ...(extras.length > 0 ? ['', ...extras.map((e) => `- ${escapeMarkdown(e)}`)] : []),
  ].join('\n').concat('\n');
}
