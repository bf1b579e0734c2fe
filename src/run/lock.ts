/**
 * One process per run directory: `runs/<name>/.lock` holds the owner's pid, host and start
 * time, created exclusively (O_EXCL). A lock whose pid is no longer alive on this host is stale
 * (the owner was killed) and is taken over; a live owner means the directory is in use.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { badInput } from '../errors.js';

interface LockOwner {
  pid: number;
  hostname: string;
  started_at: string;
}

export interface RunLock {
  path: string;
  /** The pid of a dead owner whose stale lock was taken over, if any. */
  tookOverStaleFrom: number | null;
  release(): void;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(path: string): LockOwner | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as LockOwner;
  } catch {
    return null; // torn or empty: its writer died between create and write
  }
}

export function acquireRunLock(runDir: string): RunLock {
  const path = join(runDir, '.lock');
  const me: LockOwner = { pid: process.pid, hostname: hostname(), started_at: new Date().toISOString() };
  let tookOverStaleFrom: number | null = null;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, JSON.stringify(me));
      closeSync(fd);
      return {
        path,
        tookOverStaleFrom,
        release() {
          if (readOwner(path)?.pid === me.pid) rmSync(path, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = readOwner(path);
    if (owner && owner.hostname !== me.hostname) {
      throw badInput(`in use by pid ${owner.pid} on ${owner.hostname} (started ${owner.started_at})`, {
        file: runDir,
        fix: `if that run is dead, delete ${path}`,
      });
    }
    if (owner && pidAlive(owner.pid) && owner.pid !== process.pid) {
      throw badInput(`in use by pid ${owner.pid} (started ${owner.started_at})`, {
        file: runDir,
        fix: 'wait for it to finish, or pick another --name',
      });
    }
    tookOverStaleFrom = owner?.pid ?? -1;
    rmSync(path, { force: true });
  }
  throw badInput('could not take the run lock', { file: path, fix: 'delete the lock file if no run is using it' });
}
