/**
 * Option schemas every optimizer shares: the base schema each optimizer's schema extends, and
 * the pieces (lr, betas, eps, weight decay) whose names, ranges and help texts are written once.
 */
import { z } from 'zod';

export const decayOption = z
  .enum(['all', 'matrices'])
  .default('all')
  .describe(
    "which parameters weight decay applies to: 'all' (torch.optim) or 'matrices' (≥2-D weights only, " +
      "the nanoGPT/OLMo convention; YAML configs default to this)",
  );

export const lrOption = (fallback: number) =>
  z.number().positive().default(fallback).describe('peak learning rate (the schedule scales it)');

export const betasOption = (b1: number, b2: number) =>
  z
    .tuple([z.number().min(0).lt(1), z.number().min(0).max(1)])
    .default([b1, b2])
    .describe('[β1, β2]: decay rates of the first and second moments');

export const weightDecayOption = (fallback: number) =>
  z.number().min(0).default(fallback).describe('decoupled weight decay coefficient (applied as lr·wd·W)');

export const epsOption = (fallback: number) =>
  z.number().min(0).default(fallback).describe('added to the square root of the second moment');

/**
 * The options every optimizer has and the only ones the registry and `RuleOptimizer` read:
 * `type` (the registry name), `lr` and `decay`. Unknown keys are errors.
 */
export const baseOptionsSchema = z.strictObject({
  type: z.string(),
  lr: lrOption(1e-3),
  decay: decayOption,
});

/** What every optimizer's validated config has (`z.output` of `baseOptionsSchema`). */
export type BaseOptions = z.output<typeof baseOptionsSchema>;

/**
 * An optimizer's option schema: `baseOptionsSchema` extended with its `type` literal and its own
 * options (which may override `lr` to change its default). The keys keep the order type, lr,
 * own options, decay: the order `soap-train optimizers` lists them and errors name them.
 */
export function optimizerSchema<const T extends string, S extends z.core.$ZodLooseShape>(type: T, own: S) {
  const { decay, ...head } = baseOptionsSchema.shape;
  return z
    .strictObject(head)
    .extend({ type: z.literal(type) })
    .extend(own)
    .extend({ decay });
}
