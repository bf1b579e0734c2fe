/**
 * soap-train as a library: `import { createOptimizer, tf } from 'soap-train'`.
 */
export { tf } from './tf.js';
export { createOptimizer, OPTIMIZERS, optimizerNames, OptimizerConfigError } from './optim/registry.js';
export { RuleOptimizer } from './optim/rule-optimizer.js';
export type { UpdateRule, ParamState, UpdateContext, UpdateResult } from './optim/types.js';
