/**
 * When a run must stop early, and whether the step in flight may finish first.
 *
 * - A stop request (SIGINT/SIGTERM → `signal`): the step in flight finishes and a checkpoint is
 *   written if both fit in `train.stop_grace_s`; otherwise the step is abandoned when finishing
 *   it would leave no room for the checkpoint: its host linear algebra in the worker pool at
 *   once, its device work at the next micro-batch or parameter boundary (the event loop runs
 *   there). Before the updates start nothing of the step is applied, and the last finished step
 *   is checkpointed; once some parameters are updated the state in memory is no step's, so
 *   nothing is saved and a resume continues from the newest checkpoint on disk.
 * - A time limit (`train.max_wall_s`, counted from the process start like a scheduler's): no
 *   step starts unless it and a checkpoint fit before the limit, and a step's host work is
 *   abandoned when it runs into the room the checkpoint needs.
 *
 * The room a checkpoint needs is 1.5× the slowest save so far (before the first: its size at a
 * conservative write rate) plus one second.
 */
import type { Logger } from 'pino';

export type StopReason = 'signal' | 'time_limit';

export class StopPolicy {
  /** Aborts the host work of the step in flight (passed to the worker pool). */
  private hostAbort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private stopRequestedAt: number | null = null;
  /** Why the step in flight was abandoned, once it was. */
  abandoned: StopReason | null = null;

  constructor(
    private readonly opts: {
      signal?: AbortSignal;
      graceS: number;
      maxWallS?: number;
      /** Seconds of the slowest checkpoint save so far. */
      slowestSaveS: () => number;
      logger: Logger;
    },
  ) {
    // A stop requested before the policy existed (e.g. while the trainer awaited its worker
    // pool) still starts the grace period: 'abort' does not fire again for an aborted signal.
    if (opts.signal?.aborted) this.onStopRequest();
    else opts.signal?.addEventListener('abort', this.onStopRequest, { once: true });
  }

  /** The signal of the step in flight's host work. */
  get hostSignal(): AbortSignal {
    return this.hostAbort.signal;
  }

  private reserveS(): number {
    return 1.5 * this.opts.slowestSaveS() + 1;
  }

  private nowS(): number {
    return performance.now() / 1000;
  }

  private readonly onStopRequest = (): void => {
    this.stopRequestedAt = this.nowS();
    const budgetS = Math.max(0, this.opts.graceS - this.reserveS());
    this.opts.logger.warn({ event: 'stop_plan', grace_s: this.opts.graceS, step_budget_s: budgetS }, 'stop requested: finishing the step if it fits the grace period');
    this.arm(budgetS, 'signal');
  };

  private arm(inS: number, reason: StopReason): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.abandoned = reason;
      this.hostAbort.abort(new Error(`step abandoned (${reason === 'signal' ? 'stop_grace_s' : 'max_wall_s'})`));
    }, inS * 1000);
  }

  /**
   * Called before each step with the last step's duration: false when the time limit leaves no
   * room for another step and a checkpoint. Arms the time-limit deadline for this step.
   */
  beginStep(lastStepS: number): boolean {
    if (this.opts.maxWallS === undefined) return true;
    const left = this.opts.maxWallS - this.nowS() - this.reserveS();
    if (left < lastStepS) return false;
    if (this.stopRequestedAt === null) this.arm(left, 'time_limit');
    return true;
  }

  /** Called after each step that finished: disarms the time-limit deadline (a stop request's stays). */
  endStep(): void {
    if (this.stopRequestedAt === null) clearTimeout(this.timer);
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.opts.signal?.removeEventListener('abort', this.onStopRequest);
  }
}
