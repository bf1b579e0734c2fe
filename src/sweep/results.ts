/**
 * What a sweep produced: one row per run (read back from its run directory), the best run per
 * optimizer, and the compare table against the baseline; written as `sweep.json` and `sweep.md`.
 * The rows come from the run directories, not from the child processes, so `--collect` after a
 * Slurm array gives the same files as a local sweep.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compareRuns, formatCompareMarkdown, formatCompareTable, type CompareResult } from '../compare/index.js';
import { SoapTrainError } from '../errors.js';
import { readRun, type RunRecord, type RunStatus } from '../run/read-run.js';
import type { RunOutcome } from './local.js';
import type { PlannedRun, SweepPlan } from './plan.js';

export type SweepRunStatus = RunStatus | 'not_started';

export interface SweepRow {
  name: string;
  optimizer: string;
  /** The run's `--set` overrides on top of the base config. */
  overrides: string[];
  status: SweepRunStatus;
  /** The trainer's exit code in this invocation (null when it did not run now). */
  exit_code: number | null;
  planned_steps: number;
  /** Last step reached (a metrics or eval row). */
  steps: number;
  final_val_loss: number | null;
  best_val_loss: number | null;
  tokens_per_s: number | null;
  /** Training clock in seconds (evaluation and checkpoints excluded). */
  wall_clock_s: number | null;
  run_dir: string;
  log: string;
  /** Why the run directory could not be read, when it could not. */
  error?: string;
}

export interface SweepResults {
  name: string;
  base: string;
  updated_at: string;
  counts: Record<string, number>;
  runs: SweepRow[];
  /** Lowest final validation loss per optimizer among completed runs: optimizer → run name. */
  best: Record<string, string>;
  baseline: string | null;
  /** Why there is no compare table, when there is none. */
  compare_note: string | null;
  compare: CompareResult | null;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function rowFor(dir: string, run: PlannedRun, outcome: RunOutcome | undefined): { row: SweepRow; record: RunRecord | null } {
  const runDir = join(dir, run.name);
  const row: SweepRow = {
    name: run.name,
    optimizer: run.optimizer,
    overrides: run.set,
    status: 'not_started',
    exit_code: outcome?.exitCode ?? null,
    planned_steps: run.steps,
    steps: 0,
    final_val_loss: null,
    best_val_loss: null,
    tokens_per_s: null,
    wall_clock_s: null,
    run_dir: runDir,
    log: join(dir, 'logs', `${run.name}.log`),
  };
  let record: RunRecord | null = null;
  if (existsSync(join(runDir, 'config.yaml'))) {
    try {
      record = readRun(runDir);
    } catch (err) {
      row.status = 'failed';
      row.error = err instanceof SoapTrainError ? err.oneLine() : String(err);
    }
  }
  if (record) {
    const s = record.summary ?? {};
    const fresh = record.status !== 'in_progress'; // a stale summary's numbers describe an earlier attempt
    const bestEval = record.evals.reduce<number | null>((m, e) => (Number.isFinite(e.val_loss) && (m === null || e.val_loss < m) ? e.val_loss : m), null);
    Object.assign(row, {
      status: record.status,
      steps: record.lastStep,
      final_val_loss: (fresh ? num(s.final_val_loss) : null) ?? record.finalValLoss,
      best_val_loss: (fresh ? num(s.best_val_loss) : null) ?? bestEval,
      tokens_per_s: (fresh ? num(s.tokens_per_s) : null) ?? num(record.metrics.at(-1)?.tokens_per_s),
      wall_clock_s: (fresh ? num(s.wall_clock_s) : null) ?? (record.lastStep > 0 ? record.trainSeconds : null),
    });
  } else if (!row.error && outcome && outcome.status !== 'not_started' && outcome.status !== 'skipped') {
    // The trainer exited before writing its run directory (bad input, crash at start).
    row.status = outcome.status === 'completed' ? 'failed' : outcome.status;
  }
  // This invocation saw the trainer fail: that outranks an older summary left in the folder.
  if (outcome?.status === 'failed') row.status = 'failed';
  return { row, record };
}

/** The best (lowest final validation loss) completed run of each optimizer. */
export function bestPerOptimizer(rows: readonly SweepRow[]): Record<string, string> {
  const best = new Map<string, SweepRow>();
  for (const row of rows) {
    if (row.status !== 'completed' || row.final_val_loss === null) continue;
    const held = best.get(row.optimizer);
    if (!held || row.final_val_loss < held.final_val_loss!) best.set(row.optimizer, row);
  }
  return Object.fromEntries([...best].map(([opt, row]) => [opt, row.name]));
}

/** `--baseline`, else the AdamW run with the most steps (first seed: first in plan order). */
export function defaultBaseline(plan: SweepPlan): string | null {
  if (plan.baseline) return plan.baseline;
  const adamw = plan.runs.filter((r) => r.optimizer === 'adamw');
  if (adamw.length === 0) return null;
  const most = Math.max(...adamw.map((r) => r.steps));
  return adamw.find((r) => r.steps === most)!.name;
}

/** Reads every run of the plan back and puts the sweep's results together. */
export function collectResults(dir: string, plan: SweepPlan, outcomes: readonly RunOutcome[] = []): SweepResults {
  const read = plan.runs.map((run) => rowFor(dir, run, outcomes.find((o) => o.name === run.name)));
  const rows = read.map((r) => r.row);
  const counts: Record<string, number> = {};
  for (const row of rows) counts[row.status] = (counts[row.status] ?? 0) + 1;

  const baseline = defaultBaseline(plan);
  let compare: CompareResult | null = null;
  let note: string | null = null;
  const records = read.map((r) => r.record).filter((r): r is RunRecord => r !== null);
  const baseRecord = records.find((r) => r.name === baseline);
  if (baseline === null) note = 'no AdamW run to measure against: pass --baseline RUN';
  else if (!baseRecord) note = `the baseline ${baseline} has no run directory yet`;
  else if (baseRecord.finalValLoss === null) note = `the baseline ${baseline} has not evaluated yet`;
  else {
    try {
      compare = compareRuns(baseRecord, records);
    } catch (err) {
      if (!(err instanceof SoapTrainError)) throw err;
      note = err.oneLine();
    }
  }
  return {
    name: plan.name,
    base: plan.base,
    updated_at: new Date().toISOString(),
    counts,
    runs: rows,
    best: bestPerOptimizer(rows),
    baseline,
    compare_note: note,
    compare,
  };
}

const fmtLoss = (v: number | null) => (v === null ? '-' : v.toFixed(4));
const fmtSeconds = (v: number | null) => (v === null ? '-' : v >= 3600 ? `${(v / 3600).toFixed(2)} h` : v >= 60 ? `${(v / 60).toFixed(1)} min` : `${v.toFixed(1)} s`);
const cell = (text: string) => text.replace(/\|/g, '\\|');

export function countsLine(counts: Record<string, number>): string {
  return Object.entries(counts)
    .map(([status, n]) => `${n} ${status.replace('_', ' ')}`)
    .join(', ');
}

/** sweep.md: the runs table, the best run per optimizer, the compare table. */
export function formatSweepMarkdown(r: SweepResults): string {
  const lines = [
    `# Sweep ${r.name}`,
    '',
    `Base config: \`${r.base}\` · ${r.runs.length} runs: ${countsLine(r.counts)} · updated ${r.updated_at}`,
    '',
    '| run | optimizer | overrides | status | steps | final val loss | best val loss | tokens/s | training time |',
    '|---|---|---|---|---|---|---|---|---|',
    ...r.runs.map(
      (row) =>
        `| ${cell(row.name)} | ${row.optimizer} | ${cell(row.overrides.map((o) => `\`${o}\``).join(' ') || '-')} | ${row.status} | ${row.steps}/${row.planned_steps} | ` +
        `${fmtLoss(row.final_val_loss)} | ${fmtLoss(row.best_val_loss)} | ${row.tokens_per_s === null ? '-' : Math.round(row.tokens_per_s)} | ${fmtSeconds(row.wall_clock_s)} |`,
    ),
    '',
    '## Best run per optimizer',
    '',
  ];
  const best = Object.entries(r.best);
  if (best.length === 0) lines.push('No run has completed yet.');
  else {
    lines.push('| optimizer | run | final val loss | steps |', '|---|---|---|---|');
    for (const [optimizer, name] of best) {
      const row = r.runs.find((x) => x.name === name)!;
      lines.push(`| ${optimizer} | ${cell(name)} | ${fmtLoss(row.final_val_loss)} | ${row.steps} |`);
    }
  }
  lines.push('', `## Compared with ${r.baseline ?? '(no baseline)'}`, '');
  lines.push(r.compare ? formatCompareMarkdown(r.compare).trimEnd() : `No compare table: ${r.compare_note}.`);
  const failed = r.runs.filter((row) => row.status === 'failed');
  if (failed.length > 0) {
    lines.push('', '## Failed runs', '', ...failed.map((row) => `- ${cell(row.name)}: ${row.error ? cell(row.error) : `exit ${row.exit_code ?? '?'}`}, log \`${row.log}\``));
  }
  return `${lines.join('\n')}\n`;
}

/** The end-of-sweep summary for the terminal: counts, best per optimizer, compare table. */
export function formatSweepText(r: SweepResults): string {
  const lines = [`sweep ${r.name}: ${r.runs.length} runs: ${countsLine(r.counts)}`];
  for (const [optimizer, name] of Object.entries(r.best)) {
    const row = r.runs.find((x) => x.name === name)!;
    lines.push(`best ${optimizer}: ${name} (final val loss ${fmtLoss(row.final_val_loss)})`);
  }
  for (const row of r.runs.filter((x) => x.status === 'failed')) lines.push(`failed: ${row.name}: ${row.error ?? `exit ${row.exit_code ?? '?'}`} (log ${row.log})`);
  lines.push('', r.compare ? formatCompareTable(r.compare).trimEnd() : `no compare table: ${r.compare_note}`);
  return `${lines.join('\n')}\n`;
}

/** Writes sweep.json and sweep.md into the sweep directory. */
export function writeResults(dir: string, r: SweepResults): { json: string; md: string } {
  const json = join(dir, 'sweep.json');
  const md = join(dir, 'sweep.md');
  writeFileSync(json, `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(md, formatSweepMarkdown(r));
  return { json, md };
}
