/**
 * The optimizer registry: a static list of name → (zod schema, rule builder). Adding an
 * optimizer is one module exporting a schema and a builder plus one line here; the CLI's
 * `optimizers` command, config validation and `createOptimizer` all read this list.
 */
import { z } from 'zod';
import { adamwRule, adamwSchema } from './adamw.js';
import { RuleOptimizer } from './rule-optimizer.js';
import { shampooRule, shampooSchema } from './shampoo.js';
import { soapRule, soapSchema } from './soap.js';
import { adafactorRule, adafactorSchema } from './adafactor.js';
import type { UpdateRule } from './types.js';

export interface RegistryEntry<S extends z.ZodObject = z.ZodObject> {
  /** The `type:` value in configs. */
  name: string;
  /** One line for `soap-train optimizers`. */
  summary: string;
  schema: S;
  build(config: z.infer<S>): UpdateRule;
}

function entry<S extends z.ZodObject>(e: RegistryEntry<S>): RegistryEntry {
  return e as unknown as RegistryEntry;
}

export const OPTIMIZERS: readonly RegistryEntry[] = [
  entry({
    name: 'adamw',
    summary: 'AdamW, torch.optim.AdamW semantics (decoupled weight decay applied before the step)',
    schema: adamwSchema,
    build: adamwRule,
  }),
  entry({
    name: 'soap',
    summary: 'SOAP: Adam in the eigenbasis of Shampoo\'s preconditioner (reference soap.py semantics)',
    schema: soapSchema,
    build: soapRule,
  }),
  entry({
    name: 'shampoo',
    summary: 'Shampoo with Adam grafting, DistributedShampoo semantics (inverse roots by float64 eigh)',
    schema: shampooSchema,
    build: shampooRule,
  }),
  entry({
    name: 'adafactor',
    summary: 'Adafactor (factored second moment) with momentum and SOAP\'s bias-correction/decay conventions',
    schema: adafactorSchema,
    build: adafactorRule,
  }),
];

export function optimizerNames(): string[] {
  return OPTIMIZERS.map((e) => e.name);
}

export function findOptimizer(name: string): RegistryEntry | undefined {
  return OPTIMIZERS.find((e) => e.name === name);
}

/**
 * The schema of the `optimizer:` config section: a union discriminated by `type`, so an option
 * that belongs to another optimizer (or to none) is rejected by the strict object it lands in.
 */
export function optimizerSectionSchema(): z.ZodType<Record<string, unknown> & { type: string; lr: number }> {
  const schemas = OPTIMIZERS.map((e) => e.schema) as unknown as [z.ZodObject, z.ZodObject, ...z.ZodObject[]];
  const union = schemas.length === 1 ? schemas[0] : z.discriminatedUnion('type', schemas as never);
  return union as unknown as z.ZodType<Record<string, unknown> & { type: string; lr: number }>;
}

/** Thrown by createOptimizer on a config the registry refuses. */
export class OptimizerConfigError extends Error {
  constructor(
    message: string,
    readonly issues: z.core.$ZodIssue[] = [],
  ) {
    super(message);
    this.name = 'OptimizerConfigError';
  }
}

/**
 * Builds a `tf.Optimizer` from the same object as a YAML `optimizer:` section, e.g.
 * `createOptimizer({type: 'soap', lr: 3e-3})`. Unknown keys and out-of-range values throw.
 */
export function createOptimizer(config: { type: string } & Record<string, unknown>): RuleOptimizer {
  const found = findOptimizer(String(config?.type));
  if (!found) {
    throw new OptimizerConfigError(`unknown optimizer type '${String(config?.type)}' (one of: ${optimizerNames().join(', ')})`);
  }
  const parsed = found.schema.safeParse(config);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const [path, message] =
      first.code === 'unrecognized_keys'
        ? [[...first.path, first.keys[0]], `unknown key (allowed: ${Object.keys(found.schema.shape).join(', ')})`]
        : [first.path, first.message];
    throw new OptimizerConfigError(`optimizer.${path.join('.')}: ${message}`, parsed.error.issues);
  }
  const valid = parsed.data as Record<string, unknown> & { lr: number; decay: 'all' | 'matrices' };
  return new RuleOptimizer(found.build(valid), { type: found.name, lr: valid.lr, decay: valid.decay, config: valid });
}
