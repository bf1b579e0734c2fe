/**
 * Reads a finished, interrupted or still-running run directory back into one record: the
 * resolved config, the metrics and eval curves, the summary and where the run stands. Shared by
 * `compare`, `report` and `sweep`, so every reader sees a run the same way.
 *
 * A resumed run continues in the same directory (rows past the checkpoint are dropped on resume),
 * so the files are one curve; we still keep the LAST row per step, in case a writer appended a
 * step twice. A run being written may have a torn last line: that one line is skipped, while any
 * other line that is not a JSON object with a numeric `step` is bad input naming the file and line.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { badInput } from '../errors.js';
import { runPaths } from './run-dir.js';

export interface MetricsRow {
  step: number;
  tokens: number;
  loss: number;
  lr: number;
  grad_norm: number;
  wall_s: number;
  tokens_per_s: number;
  time_ms: { data_ms: number; fwd_bwd_ms: number; optim_ms: number; refresh_ms: number };
  interval?: { steps: number; data_ms: number; fwd_bwd_ms: number; optim_ms: number; refresh_ms: number };
}

export interface EvalRow {
  step: number;
  tokens: number;
  val_loss: number;
  wall_s: number;
  eval_s: number;
}

export type RunStatus = 'completed' | 'interrupted' | 'time_limit' | 'failed' | 'in_progress';

export interface RunRecord {
  /** Absolute path of the run directory. */
  dir: string;
  /** Basename of dir. */
  name: string;
  /** config.yaml as parsed (the resolved config), for diffs and families. */
  config: Record<string, unknown>;
  /** config.optimizer.type. */
  optimizer: string;
  /** config.train.steps. */
  plannedSteps: number;
  /** Sorted by step, last row per step kept. */
  metrics: MetricsRow[];
  /** Sorted by step, last row per step kept. */
  evals: EvalRow[];
  /** summary.json, null when absent. */
  summary: Record<string, unknown> | null;
  /** manifest.json, null when absent or unreadable (nothing we compute depends on it). */
  manifest: Record<string, unknown> | null;
  /** summary.status, or 'in_progress' when there is no summary or it is older than the last row. */
  status: RunStatus;
  /** Last step with a metrics or eval row (0 before any). */
  lastStep: number;
  /** Training clock at lastStep (wall_s of the last row: evaluation and checkpoints excluded). */
  trainSeconds: number;
  /** trainSeconds / lastStep, null before any step. */
  secondsPerStep: number | null;
  /** val_loss of the last eval row, null when there is none. */
  finalValLoss: number | null;
}

const FINISHED_STATUSES: readonly RunStatus[] = ['completed', 'interrupted', 'time_limit', 'failed'];

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The rows of a JSON-lines file, last row per step kept, sorted by step. A missing file is an
 * empty curve (a run that has not logged yet). JSON has no NaN: a non-finite value was written
 * as null, so `nullToNaN` fields become NaN to keep the rows numeric.
 */
function readStepRows<T extends { step: number }>(file: string, nullToNaN: readonly string[]): T[] {
  if (!existsSync(file)) return [];
  const lines = readFileSync(file, 'utf8').split('\n');
  // Only the last non-empty line can be torn (appends are whole lines; a crash cuts the last one).
  let lastNonEmpty = lines.length - 1;
  while (lastNonEmpty >= 0 && !lines[lastNonEmpty].trim()) lastNonEmpty--;
  const byStep = new Map<number, T>();
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      if (i === lastNonEmpty) return;
      throw badInput('not a JSON line', { file, field: `line ${i + 1}`, fix: 'remove or repair the corrupt line' });
    }
    if (!isPlainObject(row) || typeof row.step !== 'number' || !Number.isFinite(row.step)) {
      throw badInput('row has no numeric "step"', { file, field: `line ${i + 1}`, fix: 'remove or repair the line' });
    }
    for (const key of nullToNaN) if (row[key] === null) row[key] = Number.NaN;
    byStep.set(row.step, row as unknown as T);
  });
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

function readJsonObject(file: string): Record<string, unknown> | null {
  if (!existsSync(file)) return null;
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    throw badInput('not valid JSON', { file, fix: 'repair or delete the file' });
  }
  if (!isPlainObject(value)) throw badInput('not a JSON object', { file, fix: 'repair or delete the file' });
  return value;
}

function readConfig(file: string): Record<string, unknown> {
  if (!existsSync(file)) throw badInput('run directory has no config.yaml', { file, fix: 'pass a directory written by soap-train train' });
  let value: unknown;
  try {
    value = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw badInput(`not valid YAML: ${(err as Error).message.split('\n')[0]}`, { file });
  }
  if (!isPlainObject(value)) throw badInput('config is not a YAML mapping', { file });
  return value;
}

/** The value at a dotted path of a nested object, undefined when any part is missing. */
export function getPath(obj: Record<string, unknown>, dotted: string): unknown {
  let node: unknown = obj;
  for (const part of dotted.split('.')) {
    if (!isPlainObject(node)) return undefined;
    node = node[part];
  }
  return node;
}

/**
 * Where the run stands. The summary is written at the end of every attempt, so a resumed run that
 * is training again still carries the summary of its interrupted attempt: a summary whose `steps`
 * is behind the last logged row is stale, and the run is in progress. (File times are not used:
 * copies and checkouts do not keep them.)
 */
function runStatus(summary: Record<string, unknown> | null, lastStep: number): RunStatus {
  if (!summary) return 'in_progress';
  const status = summary.status;
  if (typeof status !== 'string' || !FINISHED_STATUSES.includes(status as RunStatus)) return 'in_progress';
  if (typeof summary.steps === 'number' && summary.steps < lastStep) return 'in_progress';
  return status as RunStatus;
}

export function readRun(dir: string): RunRecord {
  const abs = resolve(dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) {
    throw badInput('no such run directory', { file: dir, fix: 'pass the directory a run was written to (--run-dir or runs/<name>)' });
  }
  const paths = runPaths(abs);
  const config = readConfig(paths.config);
  const optimizer = getPath(config, 'optimizer.type');
  if (typeof optimizer !== 'string') throw badInput('missing optimizer.type', { file: paths.config, field: 'optimizer.type' });
  const plannedSteps = getPath(config, 'train.steps');
  if (typeof plannedSteps !== 'number') throw badInput('missing train.steps', { file: paths.config, field: 'train.steps' });

  const metrics = readStepRows<MetricsRow>(paths.metrics, ['loss', 'grad_norm']);
  const evals = readStepRows<EvalRow>(paths.eval, ['val_loss']);
  const summary = readJsonObject(paths.summary);
  let manifest: Record<string, unknown> | null = null;
  try {
    manifest = readJsonObject(paths.manifest);
  } catch {
    manifest = null; // informational only; a broken manifest does not make the curves unreadable
  }

  const lastMetrics = metrics.at(-1);
  const lastEval = evals.at(-1);
  const lastStep = Math.max(lastMetrics?.step ?? 0, lastEval?.step ?? 0);
  // Both files carry the training clock; at the same step they agree, so take the later row's.
  const clockRows = [lastMetrics, lastEval].filter((r): r is MetricsRow | EvalRow => r !== undefined && r.step === lastStep);
  const trainSeconds = clockRows.reduce((s, r) => Math.max(s, typeof r.wall_s === 'number' ? r.wall_s : 0), 0);

  return {
    dir: abs,
    name: basename(abs),
    config,
    optimizer,
    plannedSteps,
    metrics,
    evals,
    summary,
    manifest,
    status: runStatus(summary, lastStep),
    lastStep,
    trainSeconds,
    secondsPerStep: lastStep > 0 ? trainSeconds / lastStep : null,
    finalValLoss: lastEval && Number.isFinite(lastEval.val_loss) ? lastEval.val_loss : null,
  };
}

export function readRuns(dirs: string[]): RunRecord[] {
  return dirs.map(readRun);
}

/** Leaves of a nested config as dotted keys; arrays and scalars are leaves. */
function flattenConfig(value: unknown, prefix: string, out: Map<string, unknown>): Map<string, unknown> {
  if (isPlainObject(value)) {
    for (const [k, v] of Object.entries(value)) flattenConfig(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) {
    out.set(prefix, value);
  }
  return out;
}

/** Dotted keys whose values differ between two resolved configs, e.g. ['optimizer.lr', 'train.steps']. */
export function configDiff(a: Record<string, unknown>, b: Record<string, unknown>): { key: string; a: unknown; b: unknown }[] {
  const flatA = flattenConfig(a, '', new Map());
  const flatB = flattenConfig(b, '', new Map());
  const keys = [...new Set([...flatA.keys(), ...flatB.keys()])].sort();
  // Values compare by their JSON text so arrays (betas) compare by content.
  return keys
    .filter((key) => JSON.stringify(flatA.get(key)) !== JSON.stringify(flatB.get(key)))
    .map((key) => ({ key, a: flatA.get(key), b: flatB.get(key) }));
}
