/**
 * soap-train as a library: `import { createOptimizer, runExperiment, loadConfig, tf } from 'soap-train'`.
 */
export { tf } from './tf.js';
export { createOptimizer, OPTIMIZERS, optimizerNames, OptimizerConfigError } from './optim/registry.js';
export { RuleOptimizer } from './optim/rule-optimizer.js';
export type { UpdateRule, ParamState, UpdateContext, UpdateResult } from './optim/types.js';
export { loadConfig, parseOverride, type LoadedConfig, type Override } from './config/load.js';
export type { ExperimentConfig } from './config/schema.js';
export { runExperiment, loadRunConfig, type RunOptions } from './run/experiment.js';
export type { RunSummary, RunProgress } from './train/run-progress.js';
export type { RunEvent, RunEventHandler } from './train/events.js';
export { SoapTrainError } from './errors.js';
export { readRun, readRuns, configDiff, type RunRecord, type RunStatus } from './run/read-run.js';
export { compareRuns, formatCompareMarkdown, formatCompareTable, type CompareResult } from './compare/index.js';

type WriteReport = typeof import('./report/write-report.js').writeReport;
/** `soap-train report` as a call; the charting stack (vega, resvg) loads on first use only. */
export async function writeReport(...args: Parameters<WriteReport>): ReturnType<WriteReport> {
  return (await import('./report/write-report.js')).writeReport(...args);
}
