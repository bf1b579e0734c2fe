/**
 * Schema pieces every optimizer shares, so option names, ranges and help texts are written once.
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
