/**
 * The optimizer registry: a static list of name → (zod schema, rule builder). Adding an
 * optimizer is one module exporting a schema (`optimizerSchema` in common.ts) and a builder,
 * plus one line here; the CLI's `optimizers` command, config validation and `createOptimizer`
 * all read this list.
 */
import { z } from 'zod';
import { adafactorRule, adafactorSchema } from './adafactor.js';
import { adamwRule, adamwSchema } from './adamw.js';
import type { BaseOptions } from './common.js';
import { RuleOptimizer } from './rule-optimizer.js';
import { shampooRule, shampooSchema } from './shampoo.js';
import { soapRule, soapSchema } from './soap.js';
import type { DecayFilter, UpdateRule } from './types.js';

/** Any optimizer's schema, as the registry sees it: a strict object with at least the base options. */
export type OptimizerSchema = z.ZodObject<{ type: z.ZodType<string>; lr: z.ZodType<number>; decay: z.ZodType<DecayFilter> }, z.core.$strict>;

/** A validated `optimizer:` section: the base options plus the optimizer's own. */
export type OptimizerSection = BaseOptions & Record<string, unknown>;

export interface RegistryEntry {
  /** The `type:` value in configs. */
  name: string;
  /** One line for `soap-train optimizers`. */
  summary: string;
  schema: OptimizerSchema;
  /** Validates a section against `schema`; on success, the config and its rule's builder. */
  validate(section: unknown): { ok: true; config: OptimizerSection; build(): UpdateRule } | { ok: false; issues: z.core.$ZodIssue[] };
}

/** One registry line; the builder sees its own schema's output type, the registry the base's. */
function entry<S extends OptimizerSchema>(name: string, summary: string, schema: S, build: (config: z.output<S>) => UpdateRule): RegistryEntry {
  return {
    name,
    summary,
    schema,
    validate(section) {
      const parsed = schema.safeParse(section);
      if (!parsed.success) return { ok: false, issues: parsed.error.issues };
      const config = parsed.data;
      return { ok: true, config, build: () => build(config) };
    },
  };
}

export const OPTIMIZERS: readonly RegistryEntry[] = [
  entry('adamw', 'AdamW, torch.optim.AdamW semantics (decoupled weight decay applied before the step)', adamwSchema, adamwRule),
  entry('soap', "SOAP: Adam in the eigenbasis of Shampoo's preconditioner (reference soap.py semantics)", soapSchema, soapRule),
  entry(
    'shampoo',
    'Shampoo with Adam grafting, DistributedShampoo semantics (inverse roots by float64 eigh, or device Newton; optional blocking)',
    shampooSchema,
    shampooRule,
  ),
  entry(
    'adafactor',
    "Adafactor (factored second moment) with momentum and SOAP's bias-correction/decay conventions",
    adafactorSchema,
    adafactorRule,
  ),
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
export function optimizerSectionSchema(): z.ZodType<OptimizerSection> {
  const [first, ...rest] = OPTIMIZERS.map((e) => e.schema);
  return rest.length === 0 ? first : z.discriminatedUnion('type', [first, ...rest]);
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
export function createOptimizer(section: { type: string } & Record<string, unknown>): RuleOptimizer {
  const found = findOptimizer(String(section?.type));
  if (!found) {
    throw new OptimizerConfigError(`unknown optimizer type '${String(section?.type)}' (one of: ${optimizerNames().join(', ')})`);
  }
  const result = found.validate(section);
  if (!result.ok) {
    const first = result.issues[0];
    const [path, message] =
      first.code === 'unrecognized_keys'
        ? [[...first.path, first.keys[0]], `unknown key (allowed: ${Object.keys(found.schema.shape).join(', ')})`]
        : [first.path, first.message];
    throw new OptimizerConfigError(`optimizer.${path.join('.')}: ${message}`, result.issues);
  }
  const { config } = result;
  return new RuleOptimizer(result.build(), { type: found.name, lr: config.lr, decay: config.decay, config });
}
