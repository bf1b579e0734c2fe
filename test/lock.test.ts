/**
 * Run-directory safety: one live process per run (a real second process is refused), stale
 * locks of dead processes taken over, release only of our own lock; and the atomic file and
 * folder commits the checkpoints are built on.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SoapTrainError } from '../src/errors.js';
import { commitDirAtomic, writeFileAtomic } from '../src/run/atomic.js';
import { acquireRunLock, slurmJob } from '../src/run/lock.js';
import { tempDirs } from './helpers/tmp.js';

const tempRun = tempDirs('soap-lock-');

const LOCK_MODULE = fileURLToPath(new URL('../src/run/lock.ts', import.meta.url));
/** Node running `code` (an ES module that may import the lock module as `lock`). */
function nodeArgs(code: string): string[] {
  return ['--import', 'tsx', '--input-type=module', '-e', `import * as lock from ${JSON.stringify(LOCK_MODULE)};\n${code}`];
}

/** The pid of a process that has certainly exited (spawned, waited for). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

const inUse = (pid: number) => (err: unknown) =>
  err instanceof SoapTrainError && err.exitCode === 2 && new RegExp(`: in use by pid ${pid} \\(started .+\\); wait for it or pick another --name`).test(err.oneLine());

test('a run directory held by another live process is refused, naming its pid', async () => {
  const run = tempRun();
  const child = spawn(process.execPath, nodeArgs(`lock.acquireRunLock(${JSON.stringify(run)}); console.log('locked'); setTimeout(() => {}, 60000);`), {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    await new Promise<void>((done, fail) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('locked') && done());
      child.on('exit', (code) => fail(new Error(`child exited (${code}) before locking`)));
    });
    assert.throws(() => acquireRunLock(run), inUse(child.pid!));
  } finally {
    child.kill('SIGKILL');
    await new Promise((done) => child.on('exit', done));
  }
  // SIGKILL left its lock behind: stale now, so it is taken over.
  const lock = acquireRunLock(run);
  assert.equal(lock.tookOverStaleFrom, child.pid);
  lock.release();
});

test('a second acquire in the same process is refused; release frees it', () => {
  const run = tempRun();
  const lock = acquireRunLock(run);
  assert.deepEqual(JSON.parse(readFileSync(lock.path, 'utf8')), lock.owner);
  assert.equal(lock.owner.pid, process.pid);
  assert.equal(lock.tookOverStaleFrom, null);
  assert.throws(() => acquireRunLock(run), /already locked by this process/);
  lock.release();
  lock.release(); // twice is harmless
  assert.ok(!existsSync(lock.path));
  acquireRunLock(run).release();
});

test('stale locks (dead pid, unreadable content, our own pid reused) are taken over', () => {
  const run = tempRun();
  const path = join(run, '.lock');
  const pid = deadPid();
  writeFileSync(path, JSON.stringify({ pid, hostname: hostname(), started_at: '2026-01-01T00:00:00Z' }));
  const taken = acquireRunLock(run);
  assert.equal(taken.tookOverStaleFrom, pid);
  assert.equal(JSON.parse(readFileSync(path, 'utf8')).pid, process.pid);
  taken.release();
  for (const junk of ['', '{"pid": 12', '{"pid": 0, "hostname": "x"}', JSON.stringify({ pid: process.pid, hostname: hostname(), started_at: 'x' })]) {
    writeFileSync(path, junk);
    const lock = acquireRunLock(run);
    assert.equal(lock.tookOverStaleFrom, junk.includes(String(process.pid)) ? process.pid : -1, junk);
    lock.release();
  }
  assert.deepEqual(readdirSync(run), [], 'no temp or aside files left');
});

test('a lock from another host is refused; release leaves a lock that is no longer ours', () => {
  const run = tempRun();
  const path = join(run, '.lock');
  writeFileSync(path, JSON.stringify({ pid: 1, hostname: 'elsewhere', started_at: 'x' }));
  assert.throws(() => acquireRunLock(run), /in use by pid 1 on host elsewhere/);
  rmSync(path);
  const lock = acquireRunLock(run);
  const other = JSON.stringify({ pid: 999999, hostname: hostname(), started_at: 'later' });
  writeFileSync(path, other); // someone took it over (we were presumed dead)
  lock.release();
  assert.equal(readFileSync(path, 'utf8'), other);
});

test('a lock left on another host by the same Slurm job (a requeue) is taken over; another job\'s is refused', () => {
  assert.equal(slurmJob({ SLURM_ARRAY_JOB_ID: '77', SLURM_ARRAY_TASK_ID: '3', SLURM_JOB_ID: '80' }), '77_3');
  assert.equal(slurmJob({ SLURM_JOB_ID: '80' }), '80');
  assert.equal(slurmJob({}), undefined);
  const run = tempRun();
  const path = join(run, '.lock');
  const saved = { job: process.env.SLURM_ARRAY_JOB_ID, task: process.env.SLURM_ARRAY_TASK_ID };
  process.env.SLURM_ARRAY_JOB_ID = '77';
  process.env.SLURM_ARRAY_TASK_ID = '3';
  try {
    writeFileSync(path, JSON.stringify({ pid: 1, hostname: 'elsewhere', started_at: 'x', slurm_job: '77_4' }));
    assert.throws(() => acquireRunLock(run), /in use by pid 1 on host elsewhere/);
    writeFileSync(path, JSON.stringify({ pid: 1, hostname: 'elsewhere', started_at: 'x', slurm_job: '77_3' }));
    const lock = acquireRunLock(run);
    assert.equal(lock.tookOverStaleFrom, 1);
    assert.equal(lock.owner.slurm_job, '77_3');
    assert.equal((JSON.parse(readFileSync(path, 'utf8')) as { slurm_job?: string }).slurm_job, '77_3');
    lock.release();
  } finally {
    for (const [k, v] of [['SLURM_ARRAY_JOB_ID', saved.job], ['SLURM_ARRAY_TASK_ID', saved.task]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});

test('a process that exits without releasing leaves no lock behind', () => {
  const run = tempRun();
  const child = spawnSync(process.execPath, nodeArgs(`lock.acquireRunLock(${JSON.stringify(run)}); process.exit(3);`), { encoding: 'utf8' });
  assert.equal(child.status, 3, child.stderr);
  assert.ok(!existsSync(join(run, '.lock')));
});

test('writeFileAtomic replaces a file whole and leaves no temp file, also when it fails', () => {
  const dir = tempRun();
  const path = join(dir, 'summary.json');
  writeFileAtomic(path, 'old\n');
  writeFileAtomic(path, new TextEncoder().encode('new\n'));
  assert.equal(readFileSync(path, 'utf8'), 'new\n');
  mkdirSync(join(dir, 'a-folder'));
  assert.throws(() => writeFileAtomic(join(dir, 'a-folder'), 'x'), /EISDIR|ENOTEMPTY|EEXIST/);
  assert.deepEqual(readdirSync(dir).sort(), ['a-folder', 'summary.json']);
});

test('commitDirAtomic publishes a folder under its final name and refuses to replace one', () => {
  const dir = tempRun();
  const tmp = join(dir, '.tmp-x');
  mkdirSync(join(tmp, 'sub'), { recursive: true });
  writeFileSync(join(tmp, 'a'), 'a');
  writeFileSync(join(tmp, 'sub', 'b'), 'b');
  commitDirAtomic(tmp, join(dir, 'x'));
  assert.deepEqual(readdirSync(dir), ['x']);
  assert.equal(readFileSync(join(dir, 'x', 'sub', 'b'), 'utf8'), 'b');
  mkdirSync(tmp);
  mkdirSync(join(dir, 'y'));
  assert.throws(() => commitDirAtomic(tmp, join(dir, 'y')), /already exists/);
  assert.throws(() => commitDirAtomic(tmp, join(dir, 'x', 'z')), /must share a parent folder/);
});
