/**
 * The run directory `runs/<name>/`: what a run writes and where.
 *
 *   config.yaml      the resolved config (after extends and --set), the one to resume from
 *   manifest.json    argv, version, git commit, backend and why, start time, host
 *   metrics.jsonl    one row per logged step (see train/metrics-row.ts)
 *   eval.jsonl       validation loss at intervals
 *   log.jsonl        events (pino)
 *   summary.json     written at the end: final losses, steps, tokens, wall-clock, tokens/s
 *   checkpoints/     step-<N>/ folders
 *
 * A run directory that exists is never overwritten: creation is exclusive (mkdir without
 * `recursive` fails on an existing folder), so two sweeps picking the same name cannot both win.
 */
import { mkdirSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { badInput } from '../errors.js';

export interface RunPaths {
  dir: string;
  config: string;
  manifest: string;
  metrics: string;
  eval: string;
  log: string;
  summary: string;
  checkpoints: string;
}

export function runPaths(dir: string): RunPaths {
  return {
    dir,
    config: join(dir, 'config.yaml'),
    manifest: join(dir, 'manifest.json'),
    metrics: join(dir, 'metrics.jsonl'),
    eval: join(dir, 'eval.jsonl'),
    log: join(dir, 'log.jsonl'),
    summary: join(dir, 'summary.json'),
    checkpoints: join(dir, 'checkpoints'),
  };
}

/** `tiny-adamw-20261124-193012`: the config's stem and the local start time. */
export function defaultRunName(configFile: string, now = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}-${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}`;
  return `${basename(configFile, extname(configFile))}-${stamp}`;
}

/** Where the run goes: `--run-dir DIR` as given, else `runs/<--name or default>`. */
export function chooseRunDir(opts: { runDir?: string; name?: string; configFile: string }): string {
  if (opts.runDir) return resolve(opts.runDir);
  const name = opts.name ?? defaultRunName(opts.configFile);
  if (!/^[\w.@+=,-]+$/.test(name)) {
    throw badInput(`--name ${JSON.stringify(name)}: use letters, digits and . _ - @ + = , only`);
  }
  return resolve('runs', name);
}

/** Creates the run directory; refuses one that already exists (nothing in it is touched). */
export function createRunDir(dir: string): RunPaths {
  mkdirSync(resolve(dir, '..'), { recursive: true });
  try {
    mkdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw badInput('run directory already exists', {
        file: dir,
        fix: 'pick another --name / --run-dir, or resume it with --resume',
      });
    }
    throw err;
  }
  return runPaths(dir);
}
