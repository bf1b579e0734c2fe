/**
 * `npm run reproduce`: the stages of the study in order, each as `soap-train sweep` runs a sweep
 * (run-sweep.ts), then the report (report.ts). Resumable: a run that completed is skipped and an
 * interrupted one resumed, so running it again after Ctrl-C, a crash or a reboot continues.
 * Progress is one line per run: the stage, the runs done of the sweep and of the study, and the
 * ETA (the estimates of the remaining runs, scaled by how fast this invocation's runs were).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { loadConfig, parseOverride } from '../../src/config/load.js';
import { EXIT } from '../../src/cli/errors.js';
import type { LocalSweep, SweepEvent } from '../../src/sweep/local.js';
import type { SweepPlan } from '../../src/sweep/plan.js';
import { loadSweepData } from './analyze.js';
import { estimateRunSeconds, formatDuration, StudyClock } from './estimate.js';
import { fmtLr, optimizerName } from './format.js';
import { chooseBestRates, lrRuns, rateTable, type RateTable } from './rates.js';
import { STUDY_JSON, writeStudyReport } from './report.js';
import { planSweep, runSweep } from './run-sweep.js';
import { STAGES, stageSweeps, writeScaledBase, type BudgetScale, type StageDef, type StudyLayout, type StudySweep } from './study.js';

export interface StudyOptions {
  /** The repository: reproduce/ and README.md are here. */
  root: string;
  /** Where the sweeps go. */
  out: string;
  /** Where results.json, RESULTS.md and the charts go. */
  resultsDir: string;
  /** README.md whose section to update, or null. */
  readme: string | null;
  jobs: number;
  /** null: the real study. */
  scale: BudgetScale | null;
  skipBatch: boolean;
  /** The trainer (default: bin/soap-train, or $SOAP_TRAIN). */
  trainer?: string[];
  log: (line: string) => void;
  /** Lets a caller (the CLI's signal handler, a test) stop the study: running runs checkpoint. */
  signal?: AbortSignal;
}

const studyDir = (root: string) => join(root, 'reproduce');

export function studyStages(skipBatch: boolean): StageDef[] {
  return STAGES.filter((s) => !(skipBatch && s.id === 'batch'));
}

const LAST_STAGE = Math.max(...STAGES.map((s) => s.number));

/** Stage 1's best rates from its folder, or null while it has not finished a run per optimizer. */
export function bestRatesOnDisk(layout: StudyLayout): { table: RateTable; missing: string[] } | null {
  const lrSweep = stageSweeps(STAGES.find((s) => s.id === 'lr')!, layout, null)[0];
  const data = loadSweepData(lrSweep.name, lrSweep.dir);
  if (!data) return null;
  const best = chooseBestRates(lrRuns(data.rows));
  const missing = [...new Set(data.plan.runs.map((r) => r.optimizer))].filter((o) => !(o in best));
  return { table: rateTable(best), missing };
}

interface PlannedSweep {
  sweep: StudySweep;
  plan: SweepPlan;
  estimates: number[];
}

/** Every sweep of the stages, planned with the rates known now (the files' own before stage 1). */
function planStudy(stages: readonly StageDef[], layout: StudyLayout, rates: RateTable | null): PlannedSweep[] {
  return stages.flatMap((stage) =>
    stageSweeps(stage, layout, rates).map((sweep) => {
      const plan = planSweep(sweep);
      const estimates = plan.runs.map((run) => estimateRunSeconds(loadConfig(plan.base, run.set.map(parseOverride)).config));
      return { sweep, plan, estimates };
    }),
  );
}

function layoutFor(opts: StudyOptions, scaledBaseDir: string): StudyLayout {
  const dir = studyDir(opts.root);
  const base = opts.scale ? writeScaledBase(join(dir, 'base.yaml'), opts.scale, scaledBaseDir) : join(dir, 'base.yaml');
  return { studyDir: dir, out: opts.out, base };
}

const scaleOf = (opts: StudyOptions) => ({ factor: opts.scale?.factor ?? 1, quick: opts.scale?.quick ?? false });

/** `--dry-run`: the stages, their sweeps and runs, and the estimated time; writes nothing. */
export function dryRun(opts: StudyOptions): number {
  const tmp = mkdtempSync(join(tmpdir(), 'soap-reproduce-'));
  try {
    const layout = layoutFor(opts, tmp);
    const known = bestRatesOnDisk(layout);
    const rates = known && known.missing.length === 0 ? known.table : null;
    const stages = studyStages(opts.skipBatch);
    const planned = planStudy(stages, layout, rates);
    const log = opts.log;
    log(`npm run reproduce: ${planned.reduce((n, p) => n + p.plan.runs.length, 0)} runs in ${stages.length} stages, sweeps in ${relative(opts.root, opts.out) || '.'}/`);
    log(rates ? `stages 2–4 use stage 1's best rates: ${Object.entries(rates).map(([o, lr]) => `${optimizerName(o)} ${fmtLr(lr)}`).join(', ')}` : "stages 2–4 will use stage 1's best rates (not known yet; the files' own rates are shown)");
    let total = 0;
    for (const stage of stages) {
      const mine = planned.filter((p) => p.sweep.stage === stage);
      const seconds = mine.reduce((s, p) => s + p.estimates.reduce((a, b) => a + b, 0), 0);
      total += seconds;
      log('');
      log(`stage ${stage.number}/${LAST_STAGE}: ${stage.title}: ${mine.reduce((n, p) => n + p.plan.runs.length, 0)} runs, about ${formatDuration(seconds)} of one core`);
      for (const p of mine) {
        log(`  ${p.sweep.name} (${relative(opts.root, p.sweep.file)}${p.sweep.stage.seeds ? ` + train.seed ${p.sweep.stage.seeds.join(',')}` : ''}):`);
        p.plan.runs.forEach((run, i) => log(`    ${run.name.padEnd(36)} ${run.optimizer.padEnd(8)} ${String(run.steps).padStart(4)} steps  ~${formatDuration(p.estimates[i])}`));
      }
    }
    log('');
    log(`estimated: ${formatDuration(total)} of one core; with -j ${opts.jobs} about ${formatDuration(total / opts.jobs)} if each run gets a core of its own (estimates: scripts/reproduce/estimate.ts; finished runs are skipped, so a rerun takes less)`);
    return EXIT.ok;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** One progress line for a sweep event, or null. */
function progressLine(e: SweepEvent, where: string, clock: StudyClock): string | null {
  const study = `study ${clock.done}/${clock.planned}`;
  const eta = clock.done < clock.planned ? ` · ETA ${formatDuration(clock.remainingSeconds())}` : '';
  switch (e.type) {
    case 'skip':
      return `${where} ${e.done}/${e.total} · ${study}] ${e.run}: completed before, skipped`;
    case 'start':
      return `${where} ${e.done}/${e.total} · ${study}] start ${e.run} (log ${e.log})${eta}`;
    case 'end': {
      const o = e.outcome;
      const took = o.seconds === null ? '' : ` in ${formatDuration(o.seconds)}`;
      return `${where} ${e.done}/${e.total} · ${study}] ${e.run} ${o.status.replace('_', ' ')}${took}${o.status === 'failed' ? ` (exit ${o.exitCode ?? 'by signal'}; log ${e.log})` : ''}${eta}`;
    }
    case 'stopping':
      return `${where}] stopping: SIGTERM to ${e.running.join(', ') || 'no run'}; they checkpoint, and npm run reproduce continues them`;
  }
}

/** Runs the stages, then writes the report. Resolves with the exit code. */
export async function runStudy(opts: StudyOptions): Promise<number> {
  mkdirSync(opts.out, { recursive: true });
  const layout = layoutFor(opts, opts.out);
  const stages = studyStages(opts.skipBatch);
  const log = opts.log;
  // Each run gets one core when runs share the machine: the linear-algebra pool and the model's
  // OpenBLAS products (src/backend/blas-matmul.ts) would otherwise use every core in every run.
  // One at a time (-j 1, the default), a run has both cores: its products use two threads.
  if (opts.jobs >= 2) {
    process.env.SOAP_TRAIN_LINALG_WORKERS ??= '1';
    process.env.SOAP_TRAIN_BLAS_THREADS ??= '1';
    process.env.OPENBLAS_NUM_THREADS ??= '1';
  }
  writeFileSync(join(opts.out, STUDY_JSON), `${JSON.stringify({ jobs: opts.jobs, budget_scale: scaleOf(opts).factor, quick: scaleOf(opts).quick, started_at: new Date().toISOString() }, null, 2)}\n`);

  const known = bestRatesOnDisk(layout);
  const clock = new StudyClock(opts.jobs);
  for (const p of planStudy(stages, layout, known && known.missing.length === 0 ? known.table : null)) {
    p.plan.runs.forEach((run, i) => clock.plan(`${p.sweep.name}/${run.name}`, p.estimates[i]));
  }
  log(`npm run reproduce: ${clock.planned} runs in ${stages.length} stages, ${opts.jobs} at a time, in ${relative(opts.root, opts.out) || '.'}/ · ETA ${formatDuration(clock.remainingSeconds())}`);

  let running: LocalSweep | null = null;
  const stop = () => running?.stop();
  opts.signal?.addEventListener('abort', stop);
  let failed = 0;
  try {
    for (const stage of stages) {
      if (opts.signal?.aborted) break;
      let rates: RateTable | null = null;
      if (stage.usesBestRates) {
        const best = bestRatesOnDisk(layout);
        if (!best || best.missing.length > 0) {
          log(`stage ${stage.number}: stage 1 has no completed run of ${best ? best.missing.join(', ') : 'any optimizer'}, so there is no learning rate to use; see its logs in ${relative(opts.root, join(opts.out, 'stage1-lr', 'logs'))}/`);
          return EXIT.failure;
        }
        rates = best.table;
      }
      log(`stage ${stage.number}/${LAST_STAGE}: ${stage.title}${rates ? ` (lr ${Object.entries(rates).map(([o, lr]) => `${optimizerName(o)} ${fmtLr(lr)}`).join(', ')})` : ''}`);
      for (const sweep of stageSweeps(stage, layout, rates)) {
        if (opts.signal?.aborted) break;
        const plan = planSweep(sweep);
        const where = `[stage ${stage.number}/${LAST_STAGE} · ${sweep.name}`;
        const outcome = await runSweep(sweep, plan, {
          jobs: opts.jobs,
          trainer: opts.trainer,
          onStart: (local) => {
            running = local;
            if (opts.signal?.aborted) local.stop();
          },
          onEvent: (e) => {
            const key = 'run' in e ? `${sweep.name}/${e.run}` : '';
            if (e.type === 'skip') clock.finish(key, null);
            if (e.type === 'end') clock.finish(key, e.outcome.status === 'completed' ? e.outcome.seconds : null);
            const line = progressLine(e, where, clock);
            if (line) log(line);
          },
        });
        running = null;
        failed += outcome.outcomes.filter((o) => o.status === 'failed').length;
        if (opts.signal?.aborted || outcome.outcomes.some((o) => o.status === 'interrupted' || o.status === 'not_started')) {
          log('stopped: npm run reproduce (the same command) continues where this left off');
          return EXIT.interrupted;
        }
      }
    }
  } finally {
    opts.signal?.removeEventListener('abort', stop);
  }
  if (opts.signal?.aborted) return EXIT.interrupted;
  await writeStudyReport(stages, layout, scaleOf(opts), { root: opts.root, resultsDir: opts.resultsDir, readme: opts.readme, log });
  if (failed > 0) log(`${failed} run(s) failed: the report uses the others; their logs are in each sweep's logs/ folder, and a rerun tries them again`);
  return failed > 0 ? EXIT.failure : EXIT.ok;
}

/** `--report-only`: the report from the runs as they are; runs nothing. */
export async function reportOnly(opts: StudyOptions): Promise<number> {
  mkdirSync(opts.out, { recursive: true });
  const layout = layoutFor(opts, opts.out);
  await writeStudyReport(studyStages(opts.skipBatch), layout, scaleOf(opts), { root: opts.root, resultsDir: opts.resultsDir, readme: opts.readme, log: opts.log });
  return EXIT.ok;
}
