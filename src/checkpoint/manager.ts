/**
 * When a run writes checkpoints, and what it does after each: the cadence (`checkpoint.interval`
 * steps or `checkpoint.interval_s` seconds, plus on demand at the end, on a signal or a time limit), pruning (keep the newest `keep`, and every
 * `keep_every`-th), the time spent (kept out of the training clock by the caller) and the
 * `checkpoint` event in log.jsonl. The trainer asks `due(step)` and calls `save(…)`; it holds no
 * checkpoint bookkeeping of its own.
 */
import type { Logger } from 'pino';
import { crashPoint } from '../run/fault.js';
import { pruneCheckpoints } from './prune.js';
import type { SavedCheckpoint } from './save.js';
import { saveTrainingCheckpoint, type TrainingSnapshot } from './state.js';

export interface CheckpointPolicy {
  /** Save every this many steps; 0: only when asked (the end, a signal). */
  interval: number;
  /** Also save once this many seconds have passed since the last save (or the start); 0: off. */
  interval_s: number;
  /** Keep the newest this many valid checkpoints (≥ 2). */
  keep: number;
  /** Also keep every checkpoint whose step is a multiple of this; 0: none. */
  keep_every: number;
}

export class CheckpointManager {
  /** Step of the newest checkpoint on disk that this run wrote or resumed from; -1: none. */
  private lastSaved: number;

  /** Step of the newest checkpoint on disk that this run wrote or resumed from; -1: none. */
  get newestStep(): number {
    return this.lastSaved;
  }
  /** performance.now() of the last save, or of the start. */
  private lastSavedAt = performance.now();
  /** Wall seconds of the slowest save so far: what a deadline must leave room for. */
  slowestSaveS = 0;

  constructor(
    private readonly runDir: string,
    private readonly policy: CheckpointPolicy,
    private readonly logger: Logger,
    resumedFromStep: number | null,
  ) {
    this.lastSaved = resumedFromStep ?? -1;
  }

  /** Whether the cadence (every `interval` steps, or `interval_s` seconds) asks for a checkpoint after `step` steps. */
  due(step: number): boolean {
    if (step === this.lastSaved) return false;
    const bySteps = this.policy.interval > 0 && step % this.policy.interval === 0;
    const byTime = this.policy.interval_s > 0 && (performance.now() - this.lastSavedAt) / 1000 >= this.policy.interval_s;
    return bySteps || byTime;
  }

  /**
   * Writes a checkpoint of `snapshot` (skipped when its step is already saved) and prunes old
   * ones. Resolves to what was written (null when skipped); `seconds` is the wall time taken.
   */
  async save(snapshot: TrainingSnapshot): Promise<{ saved: SavedCheckpoint | null; seconds: number }> {
    if (snapshot.step === this.lastSaved) return { saved: null, seconds: 0 };
    const start = performance.now();
    const saved = await saveTrainingCheckpoint(this.runDir, snapshot);
    this.lastSaved = snapshot.step;
    const removed = pruneCheckpoints(this.runDir, { keep: this.policy.keep, keepEvery: this.policy.keep_every });
    crashPoint();
    this.lastSavedAt = performance.now();
    const seconds = (this.lastSavedAt - start) / 1000;
    this.slowestSaveS = Math.max(this.slowestSaveS, seconds);
    this.logger.info(
      { event: 'checkpoint', step: snapshot.step, dir: saved.dir, bytes: saved.bytes, ms: saved.ms, removed },
      'checkpoint saved',
    );
    return { saved, seconds };
  }
}
