/**
 * One process per run directory: `runs/<name>/.lock` holds `{pid, hostname, started_at}` of the
 * process that owns the run.
 *
 * - Created exclusively: the content is written to a private temp file first and hard-linked
 *   to `.lock` (link(2) fails with EEXIST like O_EXCL does), so no reader ever sees an empty or
 *   half-written lock and mistakes it for a stale one. Where hard links are not supported the
 *   lock falls back to `open(…, 'wx')`.
 * - A lock whose pid is alive on this host: refused (bad input, exit 2), naming the pid.
 * - A lock whose pid is dead (`process.kill(pid, 0)` throws ESRCH), or that cannot be parsed:
 *   stale (its owner was killed), taken over, and reported in `tookOverStaleFrom` so the CLI
 *   can log it. Taking over renames the stale file aside and checks it is the one that was
 *   judged stale, so two processes racing for one stale lock cannot both win.
 * - A lock from another host: refused; we cannot tell whether that pid is alive. Except when it
 *   records the same Slurm job as ours (`slurm_job`: array job and task, or job id): Slurm runs a
 *   job id once at a time and requeues it only after its processes are gone, so that lock is
 *   the earlier, killed attempt of this very job (requeued onto another node) and is stale.
 * - release() removes the file only if it still holds our own content; it also runs on
 *   process exit, so a run that calls process.exit leaves no lock behind.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, linkSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { badInput } from '../errors.js';

export interface LockOwner {
  pid: number;
  hostname: string;
  started_at: string;
  /** The Slurm job (`<array job>_<task>` or the job id) the owner ran in, when it ran under Slurm. */
  slurm_job?: string;
}

/** This process's Slurm job, from the variables sbatch sets, or undefined outside Slurm. */
export function slurmJob(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.SLURM_ARRAY_JOB_ID && env.SLURM_ARRAY_TASK_ID) return `${env.SLURM_ARRAY_JOB_ID}_${env.SLURM_ARRAY_TASK_ID}`;
  return env.SLURM_JOB_ID || undefined;
}

export interface RunLock {
  /** The lock file, `<runDir>/.lock`. */
  path: string;
  owner: LockOwner;
  /** The pid of a dead owner whose stale lock was taken over (-1: unreadable lock), or null. */
  tookOverStaleFrom: number | null;
  /** Removes the lock if it is still ours. Safe to call twice. */
  release(): void;
}

export const LOCK_FILE = '.lock';

/** Lock files held by this process (resolved paths): a second acquire of one is refused. */
const held = new Set<string>();

/** Whether `pid` names a live process on this host. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user. ESRCH: no such process.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** The owner recorded in a lock's text, or null when it is not a well-formed lock. */
function parseOwner(text: string): LockOwner | null {
  try {
    const o = JSON.parse(text) as LockOwner;
    // pid ≤ 0 would make process.kill signal a process group: never trust it.
    return Number.isInteger(o?.pid) && o.pid > 0 && typeof o.hostname === 'string' ? o : null;
  } catch {
    return null;
  }
}

/** Creates `path` with `text` if it does not exist; false if it does. */
function createExclusive(path: string, text: string): boolean {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, text, { flag: 'wx' });
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
    return createWithOpen(path, text); // no hard links on this file system
  } finally {
    rmSync(tmp, { force: true });
  }
}

function createWithOpen(path: string, text: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * Removes a lock judged stale, if it is still the same file. Renaming is atomic: of two
 * processes racing here only one gets the file; the other sees ENOENT and retries creation.
 */
function removeIfUnchanged(path: string, staleText: string): void {
  const aside = `${path}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    renameSync(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (readText(aside) === staleText) {
    rmSync(aside, { force: true });
    return;
  }
  // A new owner's lock slipped in between reading and renaming: put it back (link fails,
  // harmlessly, if yet another process has created one meanwhile).
  try {
    linkSync(aside, path);
  } catch {
    // The newer lock stands; ours is only the displaced copy.
  }
  rmSync(aside, { force: true });
}

/**
 * Takes the run directory's lock, or throws a bad-input SoapTrainError when another live
 * process holds it: `runs/x: in use by pid 1234 (started …); wait for it or pick another --name`.
 */
export function acquireRunLock(runDir: string): RunLock {
  const path = join(runDir, LOCK_FILE);
  const key = resolve(path);
  if (held.has(key)) {
    throw badInput('already locked by this process', { file: runDir, fix: 'release the first lock before taking it again' });
  }
  const job = slurmJob();
  const me: LockOwner = { pid: process.pid, hostname: hostname(), started_at: new Date().toISOString(), ...(job ? { slurm_job: job } : {}) };
  const myText = `${JSON.stringify(me)}\n`;
  let tookOverStaleFrom: number | null = null;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (createExclusive(path, myText)) return holdLock(path, key, me, myText, tookOverStaleFrom);
    const text = readText(path);
    if (text === null) continue; // released between our attempt and our read
    const owner = parseOwner(text);
    // The same Slurm job on another host: the earlier attempt of this job, requeued here.
    const requeued = owner !== null && job !== undefined && owner.slurm_job === job;
    if (owner && owner.hostname !== me.hostname && !requeued) {
      throw badInput(`in use by pid ${owner.pid} on host ${owner.hostname} (started ${owner.started_at}); wait for it or pick another --name`, {
        file: runDir,
        fix: `if no soap-train process on ${owner.hostname} uses it, delete ${path}`,
      });
    }
    // Our own pid in a lock we do not hold is pid reuse (a container restarted): stale.
    // (On this host the pid check decides even for our own Slurm job: two trainers in one job.)
    if (owner && owner.hostname === me.hostname && owner.pid !== process.pid && pidAlive(owner.pid)) {
      throw badInput(`in use by pid ${owner.pid} (started ${owner.started_at}); wait for it or pick another --name`, {
        file: runDir,
        fix: `if no soap-train process uses it, delete ${path}`,
      });
    }
    tookOverStaleFrom = owner?.pid ?? -1;
    removeIfUnchanged(path, text);
  }
  throw badInput('could not take the run lock (other processes keep taking it)', { file: path, fix: 'check which processes use this run directory' });
}

function holdLock(path: string, key: string, owner: LockOwner, text: string, tookOverStaleFrom: number | null): RunLock {
  held.add(key);
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    held.delete(key);
    process.removeListener('exit', onExit);
    if (readText(path) === text) rmSync(path, { force: true });
  };
  // 'exit' listeners run on process.exit() and normal exit (not on SIGKILL: that is what the
  // stale-lock takeover is for). An error there must not change the exit code.
  const onExit = (): void => {
    try {
      release();
    } catch {
      // The next run will find a stale lock and take it over.
    }
  };
  process.on('exit', onExit);
  return { path, owner, tookOverStaleFrom, release };
}
