/**
 * What a training run shows in TensorBoard: the scalars of every metrics.jsonl row and every
 * evaluation, in an events file directly in the run directory, so `tensorboard --logdir runs/`
 * lists each run under its directory name.
 *
 * Resuming: every session (the first run and each resume) writes a NEW file that starts with a
 * SessionLog START at the first step the session trains. TensorBoard reads a run directory's
 * files in name order through one accumulator; in `_MaybePurgeOrphanedData` /
 * `_CheckForRestartAndMaybePurge` (tensorboard/backend/event_processing/
 * plugin_event_accumulator.py, used when file_version ≥ 2) the first START of a run is taken as
 * its start, and every later START as a restart: all points already loaded with
 * step ≥ that START's step are discarded (`_Purge(event, by_tags=False)` keeps `step < event.step`).
 * So the first session must write a START too, or the first resume's would be ignored; and the
 * START goes at checkpoint step + 1, not at the checkpoint's step, because the points AT that
 * step (its metrics row, its evaluation) were written before the checkpoint was saved and are
 * not written again — exactly as metrics.jsonl keeps its rows up to the checkpoint's step.
 */
import { fileVersionEvent, scalarsEvent, sessionStartEvent, type Scalar } from './event.js';
import { EventsFileWriter, type EventsFileOptions } from './events-file.js';

/** The fields of a metrics.jsonl row that are plotted (see src/train/trainer.ts). */
export interface MetricsRowFields {
  step: number;
  loss: number;
  loss_with_z: number;
  lr: number;
  grad_norm: number;
  tokens_per_s: number;
  /** Sums over the `steps` steps since the previous row. */
  interval: { steps: number; data_ms: number; fwd_bwd_ms: number; optim_ms: number; refresh_ms: number };
}

/** Tag ← metrics row: losses, optimizer, throughput, and the step-time split averaged per step over the interval. */
export function metricsRowScalars(row: MetricsRowFields): Scalar[] {
  const perStep = (sum: number) => sum / Math.max(1, row.interval.steps);
  return [
    { tag: 'loss/train', value: row.loss },
    { tag: 'loss/train_with_z', value: row.loss_with_z },
    { tag: 'optim/lr', value: row.lr },
    { tag: 'optim/grad_norm', value: row.grad_norm },
    { tag: 'perf/tokens_per_s', value: row.tokens_per_s },
    { tag: 'time/data_ms', value: perStep(row.interval.data_ms) },
    { tag: 'time/fwd_bwd_ms', value: perStep(row.interval.fwd_bwd_ms) },
    { tag: 'time/optim_ms', value: perStep(row.interval.optim_ms) },
    { tag: 'time/refresh_ms', value: perStep(row.interval.refresh_ms) },
  ];
}

export interface RunBoardOptions extends EventsFileOptions {
  /** The first step this session trains (checkpoint step + 1 on resume): where its START goes. */
  firstStep: number;
}

/** The TensorBoard side of one training session; every method is a no-op once writing failed. */
export class RunBoard {
  private readonly file: EventsFileWriter;
  private readonly now: () => number;

  constructor(runDir: string, opts: RunBoardOptions) {
    this.now = opts.clock ?? Date.now;
    const wallTime = this.wallTime();
    this.file = new EventsFileWriter(runDir, [fileVersionEvent(wallTime), sessionStartEvent(wallTime, opts.firstStep)], opts);
  }

  /** The path of this session's events file (null if it could not be created). */
  get path(): string | null {
    return this.file.path;
  }

  metricsRow(row: MetricsRowFields): void {
    this.file.append(scalarsEvent(this.wallTime(), row.step, metricsRowScalars(row)));
  }

  evaluation(step: number, valLoss: number): void {
    this.file.append(scalarsEvent(this.wallTime(), step, [{ tag: 'loss/val', value: valLoss }]));
  }

  flush(): void {
    this.file.flush();
  }

  close(): void {
    this.file.close();
  }

  /** Seconds since the epoch, as Event.wall_time holds it: the real time of the write. */
  private wallTime(): number {
    return this.now() / 1000;
  }
}
