/**
 * Progress of a step's host linear algebra (the first SOAP step's eigenbases, a Shampoo
 * refresh): minutes at the paper's sizes, so it must not run silently. Batches that finish
 * within `quietS` say nothing (a tiny model refreshes every few steps in milliseconds); longer
 * ones log a `refresh_progress` event and report a `refresh` event at most every `everyS`
 * seconds, and once when done.
 */
import type { Logger } from 'pino';
import type { PoolProgress } from '../optim/linalg/pool.js';
import type { RunEventHandler } from './events.js';

export class HostWorkProgress {
  constructor(
    private readonly logger: Logger,
    private readonly report: RunEventHandler,
    private readonly quietS = 2,
    private readonly everyS = 1,
  ) {}

  /** The progress callback for the host work of `step` (1-based: the step being taken). */
  reporter(step: number): (p: PoolProgress) => void {
    let lastS = 0;
    return (p) => {
      const last = p.done === p.total;
      if (p.elapsedS < this.quietS || (!last && p.elapsedS - lastS < this.everyS)) return;
      lastS = p.elapsedS;
      const fields = { step, done: p.done, total: p.total, elapsed_s: round1(p.elapsedS), eta_s: round1(p.etaS) };
      this.logger.info({ event: 'refresh_progress', ...fields }, 'optimizer linear algebra');
      this.report({ type: 'refresh', step, done: p.done, total: p.total, elapsedS: p.elapsedS, etaS: p.etaS });
    };
  }
}

const round1 = (x: number) => Math.round(x * 10) / 10;
