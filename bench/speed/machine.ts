/**
 * What a speed result depends on besides the code: the CPU, the core count, the load while it
 * ran (other work on a shared machine makes every number an upper bound), and the versions.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';

export interface Machine {
  cpu: string;
  cores: number;
  mem_gib: number;
  kernel: string;
  node: string;
  tfjs: string;
  /** The commit measured, and whether the tree had uncommitted changes (null outside git). */
  commit: string | null;
  dirty: boolean | null;
  /**
   * Tracked files that differ from the commit, with their modification times: each case's child
   * loads the sources when it starts, so an edit made during the run can reach some cases only.
   */
  dirty_files: Array<{ file: string; modified: string }>;
}

export function machine(): Machine {
  const git = (args: string[]) => {
    const r = spawnSync('git', args, { encoding: 'utf8' });
    // trimEnd only: porcelain status lines start with a meaningful space (" M file").
    return r.status === 0 ? r.stdout.trimEnd() : null;
  };
  const commit = git(['rev-parse', 'HEAD']);
  const status = commit === null ? null : git(['status', '--porcelain', '--untracked-files=no']);
  const files = (status ?? '').split('\n').filter(Boolean).map((line) => line.slice(3).split(' -> ').pop() ?? '');
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    mem_gib: +(totalmem() / 2 ** 30).toFixed(1),
    kernel: release(),
    node: process.version,
    tfjs: packageVersion('@tensorflow/tfjs'),
    commit,
    dirty: status === null ? null : status.length > 0,
    dirty_files: files.map((file) => ({ file, modified: modifiedAt(file) })),
  };
}

function modifiedAt(file: string): string {
  try {
    return statSync(file).mtime.toISOString();
  } catch {
    return 'deleted';
  }
}

function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(`node_modules/${name}/package.json`, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** 1, 5 and 15-minute load averages, rounded. */
export function load(): number[] {
  return loadavg().map((x) => +x.toFixed(2));
}
