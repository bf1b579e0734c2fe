/**
 * The training loop, readable in one sitting:
 *
 *   params, optimizer, progress ← a checkpoint, or a fresh initialisation
 *   while step < steps:
 *       lr ← peak · schedule(step)
 *       loss, ‖g‖ ← trainStep(batches(seed, step))       (skipped if non-finite)
 *       every log_interval: a metrics.jsonl row, a `step` event
 *       every eval_interval: validation loss → eval.jsonl
 *       when the checkpoint manager says so, on abort, at a time limit and at the end: a checkpoint
 *   summary.json
 *
 * Batches are a pure function of (seed, step) and the schedule of the step, so a checkpoint's
 * parameters, optimizer state and progress are all a resumed run needs to continue bit for bit.
 * Evaluation and checkpoint writing are kept out of the training clock (`train_s`).
 */
import type { Logger } from 'pino';
import { tf } from '../tf.js';
import type { ExperimentConfig } from '../config/schema.js';
import type { TokenDataset } from '../data/dataset.js';
import { evalBatch, trainBatch } from '../data/sampler.js';
import { initParams, paramShapes, releaseShapeConstants } from '../model/index.js';
import { LinalgPool } from '../optim/linalg/pool.js';
import { createOptimizer } from '../optim/registry.js';
import { buildSchedule } from '../schedule/index.js';
import { JsonlWriter } from '../run/jsonl.js';
import type { RunPaths } from '../run/run-dir.js';
import { writeFileAtomic } from '../run/atomic.js';
import { crashPoint } from '../run/fault.js';
import { checkpointBytes, type LoadedCheckpoint } from '../checkpoint/checkpoint.js';
import { CheckpointManager } from '../checkpoint/manager.js';
import { restoreOptimizer, restoreParams } from '../checkpoint/state.js';
import { SoapTrainError } from '../errors.js';
import { PartialStepError } from '../optim/rule-optimizer.js';
import { RunBoard } from '../tensorboard/run-board.js';
import { evaluate } from './evaluate.js';
import type { RunEventHandler } from './events.js';
import { HostWorkProgress } from './host-progress.js';
import { StopPolicy } from './stop-policy.js';
import { checkpointProgress, recordEval, round, startingProgress, summarize, type RunSummary } from './run-progress.js';
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
  /** Checked after every step: once aborted, the run checkpoints and ends as `interrupted`. */
  signal?: AbortSignal;
  report: RunEventHandler;
}

type Interval = StepTimes & { steps: number; seconds: number };

export async function train(setup: TrainSetup): Promise<RunSummary> {
  const { config, paths, logger, resume, report } = setup;
  const t = config.train;
  const micro = t.micro_batch_size ?? t.batch_size;
  const tokensPerStep = t.batch_size * t.seq_len;
  const schedule = buildSchedule(config.schedule, t.steps);
  const metrics = new JsonlWriter(paths.metrics);
  const evals = new JsonlWriter(paths.eval);
  // A new events file per session; its START at the first step trained makes TensorBoard drop an
  // earlier file's points past the checkpoint. Never throws: an I/O error warns once, then it is off.
  const board = new RunBoard(paths.dir, {
    firstStep: (resume?.meta.step ?? 0) + 1,
    warn: (message) => {
      logger.warn({ event: 'tensorboard_off' }, message);
      report({ type: 'warning', message });
    },
  });
  const checkpoints = new CheckpointManager(paths.dir, config.checkpoint, logger, resume?.meta.step ?? null);

  const optimizer = createOptimizer(config.optimizer);
  const params = resume ? restoreParams(config.model, resume, resume.dir) : initParams(config.model, { seed: t.seed });
  if (resume) restoreOptimizer(optimizer, resume.meta.optimizer.counters, resume);
  const progress = startingProgress(resume?.meta ?? null);
  const pool = new LinalgPool();
  // Started and awaited before the first step: the workers must not start (fork, from the
  // TypeScript sources) while the step's products use OpenBLAS's threads (LinalgPool.start).
  if (optimizer.usesHostWork) await pool.start();
  const hostProgress = new HostWorkProgress(logger, report);
  let interval: Interval = emptyInterval();
  let status: RunSummary['status'] = 'completed';
  let summary!: RunSummary;

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
    recordEval(progress, loss, seconds);
    evals.append({ step: progress.step, tokens: progress.tokens, val_loss: loss, wall_s: round(progress.train_s, 4), eval_s: round(seconds, 4) });
    logger.info({ event: 'eval', step: progress.step, val_loss: loss, eval_s: seconds }, 'evaluation');
    report({ type: 'eval', step: progress.step, valLoss: loss, seconds });
    board.evaluation(progress.step, loss);
  };

  /** Checkpoints the state after `progress.step` steps (the manager skips a step already saved). */
  const checkpoint = async (): Promise<void> => {
    const { step } = progress;
    board.flush();
    const { saved, seconds } = await checkpoints.save({
      step,
      tokensSeen: progress.tokens,
      wallClockS: progress.train_s,
      rng: { seed: t.seed },
      schedule: { step, lr: config.optimizer.lr * schedule(step) },
      modelConfig: config.model,
      // Counted before saving, so the checkpoint holds the time of every earlier save.
      progress: checkpointProgress(progress),
      params,
      optimizer: { type: config.optimizer.type, config: config.optimizer, states: optimizer.stateEntries() },
    });
    progress.checkpoint_s += seconds;
    if (saved) report({ type: 'checkpoint', step, dir: saved.dir, bytes: saved.bytes, seconds });
  };

  // Before the first save, what one will take: its size at a conservative 50 MB/s (measured 60–400 MB/s here).
  const firstSaveS = checkpointBytes(paramShapes(config.model), (shape) => optimizer.stateBytes(shape)).total / 50e6;
  const stop = new StopPolicy({
    signal: setup.signal,
    graceS: t.stop_grace_s,
    maxWallS: t.max_wall_s,
    // The estimate only until a save has been measured; then the measured slowest save.
    slowestSaveS: () => (checkpoints.slowestSaveS > 0 ? checkpoints.slowestSaveS : firstSaveS),
    logger,
  });
  let lastStepS = 0;
  /** Set when a step was abandoned between two parameters' updates (nothing may be saved then). */
  let partialStep: PartialStepError | null = null;

  logger.info({ event: 'start', step: progress.step, steps: t.steps, tokens_per_step: tokensPerStep, backend: setup.backend, resumed: resume !== null }, 'training');
  try {
    while (progress.step < t.steps) {
      const step = progress.step;
      if (!stop.beginStep(lastStepS)) {
        logger.warn({ event: 'time_limit', step, max_wall_s: t.max_wall_s }, 'no room for another step before max_wall_s: checkpointing');
        status = 'time_limit';
        break;
      }
      const lr = config.optimizer.lr * schedule(step);
      const started = performance.now();
      const outcome = await trainStep({
        params,
        model: config.model,
        optimizer,
        lr,
        gradClip: t.grad_clip,
        microBatches: t.batch_size / micro,
        microBatchSize: micro,
        seqLen: t.seq_len,
        batch: (i) => trainBatch(setup.trainData, { seed: t.seed, step, micro: i, batchSize: micro, seqLen: t.seq_len }),
        hostWork: { pool, signal: stop.hostSignal, onProgress: hostProgress.reporter(step + 1) },
      }).catch((err: unknown) => {
        if (!stop.abandoned) throw err;
        return err instanceof PartialStepError ? err : null;
      });
      const stepS = (performance.now() - started) / 1000;
      const result = outcome instanceof PartialStepError ? null : outcome;
      if (outcome instanceof PartialStepError) partialStep = outcome;
      if (result === null) {
        const why = stop.abandoned === 'signal' ? 'it would not finish within train.stop_grace_s' : 'train.max_wall_s';
        status = stop.abandoned === 'signal' ? 'interrupted' : 'time_limit';
        if (partialStep) {
          // Stopped between two parameters' updates: the state in memory is no step's, so it is
          // not saved; a resume continues from the newest checkpoint on disk.
          const from = checkpoints.newestStep;
          const lostSteps = progress.step - Math.max(from, 0) + 1;
          logger.warn({ event: 'step_abandoned', step: step + 1, reason: stop.abandoned, lost_s: stepS, updated: partialStep.updated, of: partialStep.total, resume_from_step: from, lost_steps: lostSteps }, 'step abandoned during its updates: no checkpoint');
          report({ type: 'warning', message: `step ${step + 1} abandoned during its updates (${why}): not checkpointed; a resume continues from ${from >= 0 ? `step ${from}` : 'the start'} (${lostSteps} step(s) lost)` });
        } else {
          // Abandoned before any update: nothing of it was applied; the last finished step is checkpointed.
          logger.warn({ event: 'step_abandoned', step: step + 1, reason: stop.abandoned, lost_s: stepS }, 'step abandoned');
          report({ type: 'warning', message: `step ${step + 1} abandoned (${why}): ${stepS.toFixed(1)}s of work lost` });
        }
        break;
      }
      stop.endStep();
      lastStepS = stepS;
      progress.train_s += stepS;
      progress.step += 1;
      progress.tokens += tokensPerStep;
      addTimes(interval, result.times, stepS);
      crashPoint();

      if (result.applied) {
        progress.bad_steps_in_a_row = 0;
        progress.last_train_loss = result.ce;
      } else {
        progress.bad_steps_in_a_row += 1;
        logger.warn({ event: 'non_finite', step: progress.step, loss: result.loss, grad_norm: result.gradNorm }, 'non-finite loss or gradient: step skipped');
        report({ type: 'warning', message: `step ${progress.step}: non-finite loss or gradient, update skipped (${progress.bad_steps_in_a_row} in a row)` });
        if (progress.bad_steps_in_a_row >= t.max_bad_steps) {
          throw new SoapTrainError(`${progress.bad_steps_in_a_row} non-finite steps in a row: stopping; the last checkpoint is intact`, {
            field: 'train.max_bad_steps',
            fix: 'lower optimizer.lr, or resume from the last checkpoint with other settings',
            exitCode: 1,
          });
        }
      }

      if (progress.step % t.log_interval === 0 || progress.step === t.steps) {
        const tokensPerS = (interval.steps * tokensPerStep) / interval.seconds;
        const row = {
          step: progress.step,
          tokens: progress.tokens,
          loss: result.ce,
          loss_with_z: result.loss,
          lr,
          grad_norm: result.gradNorm,
          wall_s: round(progress.train_s, 4),
          tokens_per_s: round(tokensPerS, 1),
          time_ms: roundTimes(result.times),
          interval: { steps: interval.steps, ...roundTimes(interval) },
        };
        metrics.append(row);
        board.metricsRow(row);
        report({ type: 'step', step: progress.step, steps: t.steps, loss: result.ce, lr, gradNorm: result.gradNorm, tokensPerS, wallS: progress.train_s });
        interval = emptyInterval();
      }
      if (t.eval_interval > 0 && progress.step % t.eval_interval === 0 && progress.step < t.steps) runEval();
      if (checkpoints.due(progress.step)) await checkpoint();
      // The step is synchronous: yield to the event loop so signal handlers (and aborts) can run.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (setup.signal?.aborted) {
        status = 'interrupted';
        break;
      }
    }
    if (status === 'completed' && progress.last_eval_step !== progress.step) runEval();
    if (!partialStep) await checkpoint();
  } catch (err) {
    status = 'failed';
    throw err;
  } finally {
    stop.dispose();
    board.close();
    summary = summarize(progress, {
      status,
      backend: setup.backend,
      optimizer: config.optimizer.type,
      resumedFromStep: resume?.meta.step ?? null,
    });
    writeFileAtomic(paths.summary, `${JSON.stringify(summary, null, 2)}\n`);
    logger.info({ event: 'end', ...summary }, 'training finished');
    // After an abandoned step a worker may still be inside a long LAPACK call: do not wait for it.
    if (stop.abandoned) void pool.terminate();
    else await pool.terminate();
    optimizer.dispose();
    tf.dispose(Object.values(params));
    releaseShapeConstants();
    report({ type: 'end', summary });
  }
  return summary;
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
