/**
 * Runs a sweep's runs on this machine: one `soap-train train … --run-dir DIR --resume` child
 * process per run (resume starts a run that does not exist yet and continues one that does), at
 * most `jobs` at once, each with its stdout+stderr appended to `logs/<run>.log`.
 *
 *   - a run whose summary says completed is skipped;
 *   - a run that fails (exit other than 0, 75 "resume me", 130 interrupted) is recorded and the
 *     others go on;
 *   - `stop()` (Ctrl-C / SIGTERM in the CLI) launches nothing more and sends SIGTERM to each
 *     running child, which finishes its step, checkpoints and exits 130; the same sweep run again
 *     resumes them. A second `stop()` sends SIGTERM again: the trainer then quits at once.
 *
 * Children run in their own process group, so a Ctrl-C in the terminal reaches the sweep only
 * and each child gets exactly one SIGTERM from us (a second signal would make it quit without
 * its checkpoint).
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readRun } from '../run/read-run.js';
import type { SweepPlan, PlannedRun } from './plan.js';

/** What became of one run in this invocation. */
export type RunOutcomeStatus = 'skipped' | 'completed' | 'failed' | 'interrupted' | 'time_limit' | 'not_started';

export interface RunOutcome {
  name: string;
  status: RunOutcomeStatus;
  /** The child's exit code (null when it was killed by a signal or never started). */
  exitCode: number | null;
  /** Seconds the child ran, wall clock (null when it did not run). */
  seconds: number | null;
}

export type SweepEvent =
  | { type: 'skip'; run: string; done: number; total: number }
  | { type: 'start'; run: string; log: string; done: number; total: number; running: string[] }
  | { type: 'end'; run: string; outcome: RunOutcome; log: string; done: number; total: number; running: string[] }
  | { type: 'stopping'; running: string[] };

export interface LocalSweepOptions {
  plan: SweepPlan;
  /** The sweep directory: run folders and logs/ go inside it. */
  dir: string;
  /** The trainer: an executable and its leading arguments (default: this node + bin/soap-train). */
  command: string[];
  /** Runs at once (default 1). */
  jobs?: number;
  /** Passed to each run as `--time-limit` (exit 75 at the limit; a rerun resumes). */
  timeLimit?: string;
  onEvent?: (e: SweepEvent) => void;
}

/** This checkout's (or package's) `bin/soap-train`: the sources sit at src/sweep, the compiled tree at dist/src/sweep. */
export function soapTrainBin(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '..', '..', 'bin', 'soap-train'), join(here, '..', '..', '..', 'bin', 'soap-train')];
  return candidates.find((c) => existsSync(c)) ?? candidates[0];
}

/**
 * The trainer the sweep starts: `$SOAP_TRAIN` when set (an executable; the tests' stub, or a
 * wrapper that loads modules), else this node running this checkout's bin/soap-train.
 */
export function trainerCommand(env: NodeJS.ProcessEnv = process.env): string[] {
  return env.SOAP_TRAIN ? [env.SOAP_TRAIN] : [process.execPath, soapTrainBin()];
}

/** The trainer's arguments for one run; the same line starts it and resumes it. */
export function trainArgs(plan: SweepPlan, run: PlannedRun, runDir: string, timeLimit?: string): string[] {
  return [
    'train',
    '--config',
    plan.base,
    ...run.set.flatMap((s) => ['--set', s]),
    '--run-dir',
    runDir,
    '--resume',
    ...(timeLimit !== undefined ? ['--time-limit', timeLimit] : []),
  ];
}

/** A run whose summary (current, not a stale one from an earlier attempt) says completed. */
export function isCompleted(runDir: string): boolean {
  if (!existsSync(join(runDir, 'summary.json'))) return false;
  try {
    return readRun(runDir).status === 'completed';
  } catch {
    return false; // unreadable: let the trainer look at it (and report what is wrong)
  }
}

function outcomeOf(code: number | null, stopRequested: boolean): RunOutcomeStatus {
  if (code === 0) return 'completed';
  if (code === 75) return 'time_limit';
  if (code === 130) return 'interrupted';
  // Killed by a signal: ours if we were stopping (a child that had not yet installed its handler).
  if (code === null && stopRequested) return 'interrupted';
  return 'failed';
}

export class LocalSweep {
  private stopRequested = false;
  private readonly running = new Map<string, number>();

  constructor(private readonly opts: LocalSweepOptions) {}

  /** Launch nothing more and forward SIGTERM to every running child. */
  stop(): void {
    this.stopRequested = true;
    this.opts.onEvent?.({ type: 'stopping', running: [...this.running.keys()] });
    for (const pid of this.running.values()) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already exited; its 'close' is on its way
      }
    }
  }

  /** Runs (or skips) every run of the plan; resolves with one outcome per run, in plan order. */
  async run(): Promise<RunOutcome[]> {
    const { plan, dir } = this.opts;
    const jobs = Math.max(1, this.opts.jobs ?? 1);
    mkdirSync(join(dir, 'logs'), { recursive: true });
    const outcomes = new Map<string, RunOutcome>();
    const total = plan.runs.length;
    let next = 0;
    const done = () => [...outcomes.values()].filter((o) => o.status !== 'not_started').length;

    const worker = async (): Promise<void> => {
      while (next < plan.runs.length && !this.stopRequested) {
        const run = plan.runs[next++];
        const runDir = join(dir, run.name);
        if (isCompleted(runDir)) {
          outcomes.set(run.name, { name: run.name, status: 'skipped', exitCode: null, seconds: null });
          this.opts.onEvent?.({ type: 'skip', run: run.name, done: done(), total });
          continue;
        }
        const outcome = await this.runOne(run, runDir, () => done(), total);
        outcomes.set(run.name, outcome);
      }
    };
    await Promise.all(Array.from({ length: Math.min(jobs, total) }, worker));
    return plan.runs.map((r) => outcomes.get(r.name) ?? { name: r.name, status: 'not_started', exitCode: null, seconds: null });
  }

  private runOne(run: PlannedRun, runDir: string, done: () => number, total: number): Promise<RunOutcome> {
    const [exe, ...lead] = this.opts.command;
    const args = [...lead, ...trainArgs(this.opts.plan, run, runDir, this.opts.timeLimit)];
    const log = join(this.opts.dir, 'logs', `${run.name}.log`);
    const fd = openSync(log, 'a');
    writeSync(fd, `=== ${new Date().toISOString()} ${[exe, ...args].join(' ')}\n`);
    const started = Date.now();
    return new Promise((resolvePromise) => {
      let settled = false;
      const finish = (code: number | null) => {
        if (settled) return; // a child that failed to start can report both 'error' and 'close'
        settled = true;
        this.running.delete(run.name);
        const outcome: RunOutcome = { name: run.name, status: outcomeOf(code, this.stopRequested), exitCode: code, seconds: (Date.now() - started) / 1000 };
        this.opts.onEvent?.({ type: 'end', run: run.name, outcome, log, done: done() + 1, total, running: [...this.running.keys()] });
        resolvePromise(outcome);
      };
      // detached: its own process group, so the terminal's Ctrl-C reaches the sweep and not the child.
      const child = spawn(exe, args, { stdio: ['ignore', fd, fd], detached: true, env: { ...process.env, FORCE_COLOR: '0' } });
      closeSync(fd);
      child.once('error', (err) => {
        const line = `soap-train sweep: could not start ${exe}: ${err.message}\n`;
        try {
          const again = openSync(log, 'a');
          writeSync(again, line);
          closeSync(again);
        } catch {
          // the log itself is unwritable: the outcome still says failed
        }
        finish(127);
      });
      child.once('spawn', () => {
        this.running.set(run.name, child.pid!);
        // stop() came between launching and the child existing: it gets its SIGTERM now.
        if (this.stopRequested) child.kill('SIGTERM');
        this.opts.onEvent?.({ type: 'start', run: run.name, log, done: done(), total, running: [...this.running.keys()] });
      });
      child.once('close', (code) => finish(code));
    });
  }
}
