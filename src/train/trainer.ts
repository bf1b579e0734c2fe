/**
 * The training loop, readable in one sitting:
 *
 *   params, optimizer, step ← a checkpoint, or a fresh initialisation
 *   while step < steps:
 *       lr ← peak · schedule(step)
 *       loss, ‖g‖ ← trainStep(batches(seed, step))       (skipped if non-finite)
 *       every log_interval: a metrics.jsonl row, a progress line
 *       every eval_interval: validation loss → eval.jsonl
 *       every checkpoint.interval, on SIGINT/SIGTERM and at the end: a checkpoint
 *   summary.json
 *
 * Batches are a pure function of (seed, step) and the schedule of the step, so a checkpoint's
 * parameters, optimizer state and step are all a resumed run needs to continue bit for bit.
 * Evaluation and checkpoint writing are kept out of the training clock (`wall_s`).
 */
import type { Logger } from 'pino';
import { tf } from '../tf.js';
import type { ExperimentConfig } from '../config/schema.js';
import type { TokenDataset } from '../data/dataset.js';
import { evalBatch, trainBatch } from '../data/sampler.js';
import { initParams } from '../model/index.js';
import { createOptimizer } from '../optim/registry.js';
import { buildSchedule } from '../schedule/index.js';
import { JsonlWriter } from '../run/jsonl.js';
import type { RunPaths } from '../run/run-dir.js';
import { writeFileAtomic } from '../run/atomic.js';
import { crashPoint, crashPointsPassed } from '../run/fault.js';
import { pruneCheckpoints, type LoadedCheckpoint } from '../checkpoint/checkpoint.js';
import { restoreOptimizer, restoreParams, saveTrainingCheckpoint } from '../checkpoint/state.js';
import { SoapTrainError } from '../errors.js';
import { evaluate } from './evaluate.js';
import { createProgress, type Progress } from './progress.js';
import { trainStep, type StepTimes } from './step.js';

export interface TrainSetup {
  config: ExperimentConfig;
  paths: RunPaths;
  trainData: TokenDataset;
  valData: TokenDataset;
  logger: Logger;
  backend: string;
  /** The checkpoint to continue from (metrics rows after its step already dropped), or null. */
  resume: LoadedCheckpoint | null;
  /** Polled after every step: true once SIGINT/SIGTERM asked the run to stop. */
  stopRequested(): boolean;
  /** Display; defaults to a bar on a TTY, plain lines otherwise. */
  progress?: Progress;
}

export interface RunSummary {
  status: 'completed' | 'interrupted' | 'failed';
  steps: number;
  tokens: number;
  final_train_loss: number | null;
  final_val_loss: number | null;
  best_val_loss: number | null;
  /** Training wall-clock in seconds (evaluation and checkpoint writing excluded). */
  wall_clock_s: number;
  eval_s: number;
  checkpoint_s: number;
  tokens_per_s: number;
  backend: string;
  optimizer: string;
  resumed_from_step: number | null;
  /** Fault-injection points passed by this process (see run/fault.ts); for the crash tests. */
  crash_points: number;
  finished_at: string;
}

type Interval = StepTimes & { steps: number; seconds: number };

export async function train(setup: TrainSetup): Promise<RunSummary> {
  const { config, paths, logger, resume } = setup;
  const t = config.train;
  const micro = t.micro_batch_size ?? t.batch_size;
  const tokensPerStep = t.batch_size * t.seq_len;
  const schedule = buildSchedule(config.schedule, t.steps);
  const metrics = new JsonlWriter(paths.metrics);
  const evals = new JsonlWriter(paths.eval);

  const optimizer = createOptimizer(config.optimizer);
  const params = resume ? restoreParams(config.model, resume.tensors, resume.dir) : initParams(config.model, { seed: t.seed });
  if (resume) restoreOptimizer(optimizer, resume.meta.optimizer.counters, resume.tensors);
  const p = resume?.meta.progress;
  let step = resume?.meta.step ?? 0;
  let clock = resume?.meta.wall_clock_s ?? 0;
  let evalS = p?.eval_s ?? 0;
  let checkpointS = 0;
  let lastLoss = p?.last_train_loss ?? null;
  let lastVal = p?.last_val_loss ?? null;
  let bestVal = p?.best_val_loss ?? null;
  let lastSaved = resume ? step : -1;
  let badInARow = 0;
  let interval: Interval = emptyInterval();
  let status: RunSummary['status'] = 'completed';
  let summaryOut!: RunSummary;
  let lastEvalStep = p?.last_eval_step ?? -1;
  const progress = setup.progress ?? createProgress(t.steps, step);

  /** Evaluates and records the result; its time is kept out of the training clock. */
  const runEval = (): void => {
    const start = performance.now();
    const loss = evaluate(params, config.model, {
      steps: t.eval_steps,
      batchSize: micro,
      seqLen: t.seq_len,
      batch: (index) => evalBatch(setup.valData, { index, batchSize: micro, seqLen: t.seq_len }),
    });
    const seconds = (performance.now() - start) / 1000;
    evalS += seconds;
    lastEvalStep = step;
    lastVal = loss;
    bestVal = bestVal === null ? loss : Math.min(bestVal, loss);
    evals.append({ step, tokens: step * tokensPerStep, val_loss: loss, wall_s: round(clock, 4), eval_s: round(seconds, 4) });
    logger.info({ event: 'eval', step, val_loss: loss, eval_s: seconds }, 'evaluation');
    progress.note(`eval step ${step}: val loss ${loss.toFixed(4)} (${seconds.toFixed(1)}s)`);
  };

  /** Writes a checkpoint of the state after `step` steps and prunes old ones. */
  const checkpoint = async (): Promise<void> => {
    if (lastSaved === step) return;
    const saved = await saveTrainingCheckpoint(paths.dir, {
      step,
      tokensSeen: step * tokensPerStep,
      wallClockS: clock,
      rng: { seed: t.seed },
      schedule: { step, lr: config.optimizer.lr * schedule(step) },
      modelConfig: config.model,
      progress: { last_train_loss: lastLoss, last_val_loss: lastVal, best_val_loss: bestVal, last_eval_step: lastEvalStep, eval_s: evalS },
      params,
      optimizer: { type: config.optimizer.type, config: config.optimizer, states: optimizer.stateEntries() },
    });
    checkpointS += saved.ms / 1000;
    lastSaved = step;
    const removed = pruneCheckpoints(paths.dir, { keep: config.checkpoint.keep, keepEvery: config.checkpoint.keep_every });
    crashPoint();
    logger.info({ event: 'checkpoint', step, dir: saved.dir, bytes: saved.bytes, ms: saved.ms, removed }, 'checkpoint saved');
  };

  logger.info({ event: 'start', step, steps: t.steps, tokens_per_step: tokensPerStep, backend: setup.backend, resumed: resume !== null }, 'training');
  try {
    while (step < t.steps) {
      const lr = config.optimizer.lr * schedule(step);
      const started = performance.now();
      const result = trainStep({
        params,
        model: config.model,
        optimizer,
        lr,
        gradClip: t.grad_clip,
        microBatches: t.batch_size / micro,
        microBatchSize: micro,
        seqLen: t.seq_len,
        batch: (i) => trainBatch(setup.trainData, { seed: t.seed, step, micro: i, batchSize: micro, seqLen: t.seq_len }),
      });
      const stepS = (performance.now() - started) / 1000;
      clock += stepS;
      step += 1;
      addTimes(interval, result.times, stepS);
      crashPoint();

      if (result.applied) {
        badInARow = 0;
        lastLoss = result.ce;
      } else {
        badInARow += 1;
        logger.warn({ event: 'non_finite', step, loss: result.loss, grad_norm: result.gradNorm }, 'non-finite loss or gradient: step skipped');
        progress.note(`step ${step}: non-finite loss or gradient, update skipped (${badInARow} in a row)`);
        if (badInARow >= t.max_bad_steps) {
          throw new SoapTrainError(`${badInARow} non-finite steps in a row: stopping; the last checkpoint is intact`, {
            field: 'train.max_bad_steps',
            fix: 'lower optimizer.lr, or resume from the last checkpoint with other settings',
            exitCode: 1,
          });
        }
      }

      if (step % t.log_interval === 0 || step === t.steps) {
        const tokensPerS = (interval.steps * tokensPerStep) / interval.seconds;
        metrics.append({
          step,
          tokens: step * tokensPerStep,
          loss: result.ce,
          loss_with_z: result.loss,
          lr,
          grad_norm: result.gradNorm,
          wall_s: round(clock, 4),
          tokens_per_s: round(tokensPerS, 1),
          time_ms: roundTimes(result.times),
          interval: { steps: interval.steps, ...roundTimes(interval) },
        });
        progress.update({ step, loss: result.ce, tokensPerS, lr, gradNorm: result.gradNorm, wallS: clock });
        interval = emptyInterval();
      }
      if (t.eval_interval > 0 && step % t.eval_interval === 0 && step < t.steps) runEval();
      if (config.checkpoint.interval > 0 && step % config.checkpoint.interval === 0) await checkpoint();
      // The step is synchronous: yield to the event loop so a SIGINT/SIGTERM handler can run.
      await new Promise<void>((resume) => setImmediate(resume));
      if (setup.stopRequested()) {
        status = 'interrupted';
        break;
      }
    }
    if (status === 'completed' && lastEvalStep !== step) runEval();
    await checkpoint();
  } catch (err) {
    status = 'failed';
    throw err;
  } finally {
    progress.stop();
    const summary: RunSummary = {
      status,
      steps: step,
      tokens: step * tokensPerStep,
      final_train_loss: lastLoss,
      final_val_loss: lastVal,
      best_val_loss: bestVal,
      wall_clock_s: round(clock, 3),
      eval_s: round(evalS, 3),
      checkpoint_s: round(checkpointS, 3),
      tokens_per_s: round((step * tokensPerStep) / Math.max(clock, 1e-9), 1),
      backend: setup.backend,
      optimizer: config.optimizer.type,
      resumed_from_step: resume?.meta.step ?? null,
      crash_points: crashPointsPassed(),
      finished_at: new Date().toISOString(),
    };
    writeFileAtomic(paths.summary, `${JSON.stringify(summary, null, 2)}\n`);
    logger.info({ event: 'end', ...summary }, 'training finished');
    optimizer.dispose();
    tf.dispose(Object.values(params));
    summaryOut = summary;
  }
  return summaryOut;
}

function emptyInterval(): Interval {
  return { steps: 0, seconds: 0, data_ms: 0, fwd_bwd_ms: 0, optim_ms: 0, refresh_ms: 0 };
}

function addTimes(into: Interval, times: StepTimes, seconds: number): void {
  into.steps += 1;
  into.seconds += seconds;
  into.data_ms += times.data_ms;
  into.fwd_bwd_ms += times.fwd_bwd_ms;
  into.optim_ms += times.optim_ms;
  into.refresh_ms += times.refresh_ms;
}

function roundTimes(times: StepTimes): StepTimes {
  return {
    data_ms: round(times.data_ms, 2),
    fwd_bwd_ms: round(times.fwd_bwd_ms, 2),
    optim_ms: round(times.optim_ms, 2),
    refresh_ms: round(times.refresh_ms, 2),
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
