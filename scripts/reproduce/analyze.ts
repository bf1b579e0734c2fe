/**
 * reproduce/results.json: everything RESULTS.md and the README section show, computed from the
 * run directories of the study's sweeps (and nothing typed by hand): the setup, the batch-size
 * argument (batch.ts), the lr sweep and its best rates (rates.ts), the headline ratios with their
 * fits and seed spread (headline.ts), and the final loss per precondition frequency.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { firstCrossing } from '../../src/compare/index.js';
import type { ExperimentConfig } from '../../src/config/schema.js';
import { countParams, type ModelShape } from '../../src/model/params.js';
import { configDiff, getPath, readRun, type RunRecord } from '../../src/run/read-run.js';
import type { SweepPlan } from '../../src/sweep/plan.js';
import type { SweepRow } from '../../src/sweep/results.js';
import { analyzeBatch, type BatchAnalysis } from './batch.js';
import { fmtLr, optimizerName } from './format.js';
import { computeHeadline, seedOf, type Headline } from './headline.js';
import { chooseBestRates, lrRuns, type BestRate, type LrRun } from './rates.js';
import { readSweep } from './run-sweep.js';
import type { StageId } from './study.js';

/** The optimizers measured against AdamW. */
export const CHALLENGERS = ['soap', 'shampoo'];

/** One sweep of the study as its folder holds it. */
export interface SweepData {
  name: string;
  plan: SweepPlan;
  rows: SweepRow[];
  /** The runs whose directories could be read (started at least). */
  records: RunRecord[];
}

export function loadSweepData(name: string, dir: string): SweepData | null {
  const read = readSweep(dir);
  if (!read) return null;
  const records: RunRecord[] = [];
  for (const row of read.results.runs) {
    if (!existsSync(join(row.run_dir, 'config.yaml'))) continue;
    try {
      records.push(readRun(row.run_dir));
    } catch {
      // unreadable: its row says why (status failed, error), and it has no curve to use
    }
  }
  return { name, plan: read.plan, rows: read.results.runs, records };
}

export interface StudySetup {
  /** Where the sweeps are, relative to the repository. */
  out_dir: string;
  budget_scale: number;
  quick: boolean;
  /** Runs at once when the stages ran (null when not recorded). */
  jobs: number | null;
  model: ModelShape;
  params: number;
  non_embedding_params: number;
  batch_size: number;
  seq_len: number;
  tokens_per_step: number;
  /** The full budget. */
  steps: number;
  tokens: number;
  warmup_steps: number | null;
  eval_interval: number;
  eval_steps: number;
  /** Steps of the headline family's runs (the fractions of the budget). */
  family_steps: number[];
  lr_grid: number[];
  frequencies: number[];
  seeds: number[];
  /** The backend the runs trained on (null before any ran). */
  backends: string[];
}

/** The setup from the resolved config of the study's full-budget AdamW run. */
export function describeSetup(config: ExperimentConfig, extra: Pick<StudySetup, 'out_dir' | 'budget_scale' | 'quick' | 'jobs' | 'family_steps' | 'lr_grid' | 'frequencies' | 'seeds' | 'backends'>): StudySetup {
  const { vocab_size, d_model, n_layers, n_heads, mlp_hidden } = config.model;
  const model = { vocab_size, d_model, n_layers, n_heads, mlp_hidden };
  const counts = countParams(model);
  const t = config.train;
  const schedule = config.schedule as { warmup_steps?: number };
  return {
    ...extra,
    model,
    params: counts.total,
    non_embedding_params: counts.nonEmbedding,
    batch_size: t.batch_size,
    seq_len: t.seq_len,
    tokens_per_step: t.batch_size * t.seq_len,
    steps: t.steps,
    tokens: t.steps * t.batch_size * t.seq_len,
    warmup_steps: schedule.warmup_steps ?? null,
    eval_interval: t.eval_interval,
    eval_steps: t.eval_steps,
  };
}

export interface FrequencyRow {
  optimizer: string;
  frequency: number;
  run: string;
  /** The sweep the run belongs to (stage 2's for frequency 10). */
  sweep: string;
  status: string;
  final_val_loss: number | null;
  seconds_per_step: number | null;
  /** Where its validation curve crosses AdamW's final loss of the same seed (null: not reached). */
  steps_to_target: number | null;
}

export interface FrequencyTable {
  seed: number;
  target_loss: number | null;
  rows: FrequencyRow[];
  notes: string[];
}

/** Config keys that cannot change a run's trajectory (compare's family rule), plus the ablated one. */
const NOT_A_DIFFERENCE = /^(checkpoint\.|train\.(log_interval|eval_interval|max_wall_s|stop_grace_s|max_bad_steps)$|backend$|optimizer\.precondition_frequency$)/;

/** The ablation: stage 3's runs and stage 2's full-budget runs of the same seed as frequency 10. */
export function frequencyTable(ablation: SweepData, family: SweepData | null, headline: Headline | null): FrequencyTable {
  const notes: string[] = [];
  const seed = ablation.records[0] ? seedOf(ablation.records[0]) : 0;
  const target = headline?.seeds.find((s) => s.seed === seed)?.baseline.target_loss ?? null;
  const row = (record: RunRecord, sweep: string): FrequencyRow => ({
    optimizer: record.optimizer,
    frequency: Number(getPath(record.config, 'optimizer.precondition_frequency')),
    run: record.name,
    sweep,
    status: record.status,
    final_val_loss: record.finalValLoss,
    seconds_per_step: record.secondsPerStep,
    steps_to_target: target === null ? null : firstCrossing(record.evals, target),
  });
  const rows = ablation.records.map((r) => row(r, ablation.name));
  for (const optimizer of [...new Set(rows.map((r) => r.optimizer))]) {
    const candidates = (family?.records ?? []).filter((r) => r.optimizer === optimizer && seedOf(r) === seed);
    const full = candidates.reduce<RunRecord | undefined>((a, r) => (!a || r.plannedSteps > a.plannedSteps ? r : a), undefined);
    if (!full) {
      notes.push(`${optimizer}: stage 2's full-budget run is missing, so the table has no frequency-10 row from it`);
      continue;
    }
    rows.push(row(full, family!.name));
    for (const other of ablation.records.filter((r) => r.optimizer === optimizer)) {
      const differs = configDiff(full.config, other.config).filter((d) => !NOT_A_DIFFERENCE.test(d.key));
      if (differs.length > 0) notes.push(`${other.name} differs from ${full.name} in more than the frequency: ${differs.map((d) => d.key).join(', ')}`);
    }
  }
  const order = (o: string) => (CHALLENGERS.includes(o) ? CHALLENGERS.indexOf(o) : CHALLENGERS.length);
  rows.sort((a, b) => order(a.optimizer) - order(b.optimizer) || (a.optimizer < b.optimizer ? -1 : a.optimizer > b.optimizer ? 1 : 0) || a.frequency - b.frequency);
  return { seed, target_loss: target, rows, notes };
}

export interface SweepStatus {
  name: string;
  counts: Record<string, number>;
  /** Runs that are not completed, with their status. */
  unfinished: string[];
}

export interface ReproduceResults {
  generator: 'npm run reproduce';
  format: 1;
  generated_at: string;
  study: StudySetup;
  sweeps: SweepStatus[];
  /** Whether every planned run of every stage completed. */
  complete: boolean;
  batch: BatchAnalysis | null;
  lr: { runs: LrRun[]; best: Record<string, BestRate> } | null;
  headline: Headline | null;
  frequency: FrequencyTable | null;
  /** Chart files next to results.json. */
  charts: { loss_steps: string; loss_seconds: string } | null;
  notes: string[];
}

function sweepStatus(s: SweepData): SweepStatus {
  const counts: Record<string, number> = {};
  for (const row of s.rows) counts[row.status] = (counts[row.status] ?? 0) + 1;
  return { name: s.name, counts, unfinished: s.rows.filter((r) => r.status !== 'completed').map((r) => `${r.name} (${r.status.replace('_', ' ')})`) };
}

export type StudyData = Partial<Record<StageId, (SweepData | null)[]>>;

/** results.json's content (charts filled in by the caller once drawn). */
export function analyzeStudy(data: StudyData, setup: StudySetup, now = new Date()): ReproduceResults {
  const present = (id: StageId) => (data[id] ?? []).filter((s): s is SweepData => s !== null);
  const all = (Object.keys(data) as StageId[]).flatMap(present);
  const headlineRuns = [...present('headline'), ...present('seeds')].flatMap((s) => s.records);
  const headline = headlineRuns.length > 0 ? computeHeadline(headlineRuns, CHALLENGERS) : null;
  const lrSweep = present('lr')[0];
  const lrRows = lrSweep ? lrRuns(lrSweep.rows) : null;
  const ablation = present('frequency')[0];
  const family = present('headline').find((s) => s.records.some((r) => r.optimizer !== 'adamw')) ?? null;
  const batchSweep = present('batch')[0];
  const notes: string[] = [];
  const best = lrRows ? chooseBestRates(lrRows) : null;
  for (const [optimizer, b] of Object.entries(best ?? {})) {
    if (b.edge) notes.push(`${optimizerName(optimizer)}'s best rate ${fmtLr(b.lr)} is the ${b.edge} of the rates swept (${b.rates.map(fmtLr).join(', ')}): a better one may lie beyond it`);
  }
  const expected = (Object.keys(data) as StageId[]).flatMap((id) => data[id] ?? []);
  if (expected.some((s) => s === null)) notes.push('some stages have not been planned yet (the study has not reached them)');
  return {
    generator: 'npm run reproduce',
    format: 1,
    generated_at: now.toISOString(),
    study: setup,
    sweeps: all.map(sweepStatus),
    complete: !expected.some((s) => s === null) && all.every((s) => s.rows.every((r) => r.status === 'completed')),
    batch: batchSweep ? analyzeBatch(batchSweep.records, { sequences: setup.batch_size, seqLen: setup.seq_len }) : null,
    lr: lrRows && best ? { runs: lrRows, best } : null,
    headline,
    frequency: ablation ? frequencyTable(ablation, family, headline) : null,
    charts: null,
    notes,
  };
}
