/**
 * One run, start to end, as a library call: `runExperiment(loaded, {runDir, resume, signal})`.
 *
 *   open the shards (headers checked) and check the vocabulary
 *   activate the backend; refuse a step that cannot fit its memory (train/memory-plan.ts)
 *   create the run directory, or: compare the resumed config, lock, load the newest valid checkpoint
 *   write config.yaml + manifest.json (fresh) | drop metrics rows past the checkpoint, record the resume
 *   train → summary.json
 *
 * Order matters for "bad input writes nothing": everything that can be refused is checked
 * before anything in the run directory changes. Shards and the lock are released on every
 * path out, error or not. The CLI, sweeps and tests all start runs through here.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { pino, type Logger } from 'pino';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { selectBackend, type BackendChoice } from '../backend/select.js';
import { loadLatestValidCheckpoint, type LoadedCheckpoint } from '../checkpoint/checkpoint.js';
import { loadConfig, type LoadedConfig, type Override } from '../config/load.js';
import { openTokenDataset, type TokenDataset } from '../data/dataset.js';
import { checkModelVocab } from '../data/vocab.js';
import { badInput } from '../errors.js';
import type { RunEventHandler } from '../train/events.js';
import { checkMemoryFits, explainOutOfMemory } from '../train/memory-plan.js';
import { reserveWasmHeap } from '../backend/wasm-heap.js';
import type { RunSummary } from '../train/run-progress.js';
import { train } from '../train/trainer.js';
import { writeFileAtomic } from './atomic.js';
import { acquireRunLock, type RunLock } from './lock.js';
import { buildManifest, type Manifest } from './manifest.js';
import { recordResume, truncateJsonlAfter, unsafeConfigChanges } from './resume.js';
import { createRunDir, runPaths, type RunPaths } from './run-dir.js';

export interface RunOptions {
  /** The run directory: created (it must not exist), or continued with `resume`. */
  runDir: string;
  /** Continue the run in `runDir` from its newest valid checkpoint; start it if the folder does not exist. */
  resume?: boolean;
  /** Once aborted, the run finishes its current step, writes a checkpoint and resolves as `interrupted`. */
  signal?: AbortSignal;
  /** Live events (start, logged steps, evaluations, checkpoints, warnings, end). */
  onProgress?: RunEventHandler;
  /** The command line recorded in manifest.json (default: this process's arguments). */
  argv?: string[];
}

/**
 * Trains one run and resolves to its summary (also written to `summary.json`); `status` is
 * `interrupted` when `signal` aborted it. Bad input (config, data, run directory, checkpoint)
 * rejects with a `SoapTrainError` before anything is written.
 */
export async function runExperiment(loaded: LoadedConfig, opts: RunOptions): Promise<RunSummary> {
  const report = opts.onProgress ?? (() => {});
  const data = openData(loaded);
  try {
    const backend = await selectBackend(loaded.config.backend);
    const memory = checkMemoryFits(loaded.config, backend.name); // a step that cannot fit is refused before anything is written
    // Grow the wasm heap once to the step's planned size: growing it op by op in the first step
    // costs dozens of garbage collections (≈ 0.3 s at the tiny size).
    reserveWasmHeap(memory.required_bytes);
    const warnings: string[] = [];
    const run = openRun(opts.runDir, loaded, opts.resume ?? false, (line) => warnings.push(line));
    try {
      const logger = pino({ base: undefined }, pino.destination({ dest: run.paths.log, sync: true, append: true }));
      for (const message of warnings) {
        logger.warn({ event: 'resume_warning' }, message);
        report({ type: 'warning', message });
      }
      recordStart(run, loaded, backend, opts.argv ?? process.argv.slice(2), logger);
      report({
        type: 'start',
        runDir: run.paths.dir,
        step: run.resume?.meta.step ?? 0,
        steps: loaded.config.train.steps,
        resumed: run.resume !== null,
        backend: backend.name,
        backendReason: backend.reason,
      });
      const onAbort = () => logger.warn({ event: 'signal', reason: String(opts.signal?.reason) }, 'stopping after the current step');
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        return await train({ ...data, config: loaded.config, paths: run.paths, logger, backend: backend.name, resume: run.resume, signal: opts.signal, report });
      } catch (err) {
        throw explainOutOfMemory(err, memory);
      } finally {
        opts.signal?.removeEventListener('abort', onAbort);
      }
    } finally {
      run.lock.release();
    }
  } finally {
    data.trainData.close();
    data.valData.close();
  }
}

/**
 * The config of an existing run: its config.yaml (plus `overrides`), with relative data globs
 * resolved against the folder of the config it was started from, then the working directory.
 */
export function loadRunConfig(runDir: string, overrides: Override[] = []): LoadedConfig {
  const paths = runPaths(runDir);
  if (!existsSync(paths.config)) throw badInput('not a run directory (no config.yaml)', { file: runDir, fix: 'give the path of runs/<name>' });
  const loaded = loadConfig(paths.config, overrides);
  const manifest = JSON.parse(readFileSync(paths.manifest, 'utf8')) as Manifest;
  return { ...loaded, baseDirs: [dirname(manifest.config_file), process.cwd()] };
}

/** Opens both splits (headers validated) and checks the model's vocabulary covers them. */
function openData(loaded: LoadedConfig): { trainData: TokenDataset; valData: TokenDataset } {
  const { config } = loaded;
  const opts = { baseDirs: loaded.baseDirs, vocabSize: config.model.vocab_size, raw: config.data.raw, configFile: loaded.file };
  const trainData = openTokenDataset(config.data.train, { ...opts, field: 'data.train' });
  let valData: TokenDataset | undefined;
  try {
    valData = openTokenDataset(config.data.val, { ...opts, field: 'data.val' });
    checkModelVocab([trainData, valData], config.model.vocab_size, { configFile: loaded.file, field: 'model.vocab_size' });
    return { trainData, valData };
  } catch (err) {
    trainData.close();
    valData?.close();
    throw err;
  }
}

interface OpenedRun {
  paths: RunPaths;
  lock: RunLock;
  resume: LoadedCheckpoint | null;
  /** Created by this call (else an existing run being continued). */
  fresh: boolean;
}

/** Creates the run directory, or checks and locks an existing one and loads its checkpoint. */
function openRun(runDir: string, loaded: LoadedConfig, resume: boolean, warn: (line: string) => void): OpenedRun {
  if (!resume || !existsSync(runDir)) {
    const paths = createRunDir(runDir);
    return { paths, lock: acquireRunLock(runDir), resume: null, fresh: true };
  }
  const paths = runPaths(runDir);
  if (!existsSync(paths.config)) throw badInput('not a run directory (no config.yaml)', { file: runDir, fix: 'pick another --name' });
  const previous = parseYaml(readFileSync(paths.config, 'utf8')) as object;
  const changed = unsafeConfigChanges(previous, loaded.config);
  if (changed.length > 0) {
    throw badInput(`the config differs from the run's in ${changed.join(', ')}`, {
      file: paths.config,
      fix: 'resume with the same model/optimizer/data/batch settings (only steps, eval/log/checkpoint cadence and backend may change)',
    });
  }
  const lock = acquireRunLock(runDir);
  try {
    if (lock.tookOverStaleFrom !== null) warn(`took over the stale lock of pid ${lock.tookOverStaleFrom}`);
    const checkpoint = loadLatestValidCheckpoint(runDir, (info) => warn(`skipping checkpoint ${info.dir}: ${info.reason}`));
    return { paths, lock, resume: checkpoint, fresh: false };
  } catch (err) {
    lock.release();
    throw err;
  }
}

/**
 * A fresh run writes its resolved config and manifest; a resumed one drops the metrics rows
 * past its checkpoint (their steps are trained again) and appends to the manifest's resumes.
 */
function recordStart(run: OpenedRun, loaded: LoadedConfig, backend: BackendChoice, argv: string[], logger: Logger): void {
  const { paths } = run;
  if (run.fresh) {
    writeFileSync(paths.config, toYaml(loaded.config));
    writeFileSync(paths.manifest, `${JSON.stringify({ ...buildManifest(loaded.file, backend, argv), run_dir: paths.dir }, null, 2)}\n`);
  } else {
    const fromStep = run.resume?.meta.step ?? 0;
    const lastRow = truncateJsonlAfter(paths.metrics, fromStep);
    truncateJsonlAfter(paths.eval, fromStep);
    const lostS = lastRow && typeof lastRow.wall_s === 'number' ? lastRow.wall_s - (run.resume?.meta.wall_clock_s ?? 0) : 0;
    writeFileAtomic(paths.config, toYaml(loaded.config));
    recordResume(paths.manifest, { at: new Date().toISOString(), argv, from_step: fromStep, lost_training_s: Math.max(0, lostS), backend, pid: process.pid });
  }
  logger.info({ event: 'backend', ...backend }, `backend ${backend.name}`);
}
