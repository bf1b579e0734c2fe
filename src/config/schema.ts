/**
 * The experiment config: one strict zod object per section, defaults and help text in one place.
 * Every object is `.strict()`: a typo'd key is an error, never a silently ignored setting.
 */
import { z } from 'zod';
import { modelSchema } from '../model/config.js';
import { optimizerSectionSchema } from '../optim/registry.js';

const globList = z
  .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
  .transform((v) => (Array.isArray(v) ? v : [v]));

export const dataSchema = z
  .object({
    train: globList.describe('training shards: a file glob or a list of globs (relative to the config file, then the working directory)'),
    val: globList.describe('validation shards: a file glob or a list of globs'),
    raw: z.boolean().default(false).describe('shards are raw uint16 token arrays without the 256-int32 header (nanoGPT train.bin)'),
  })
  .strict();

export const scheduleSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('cosine'),
      warmup_steps: z.number().int().min(0).default(0).describe('linear warmup from 0 to the peak lr over this many steps'),
      min_lr_ratio: z.number().min(0).max(1).default(0.1).describe('floor of the cosine decay as a fraction of the peak lr (the paper: 0.1)'),
      decay_steps: z.number().int().positive().optional().describe('step at which the cosine reaches its floor (default: train.steps)'),
    })
    .strict(),
  z
    .object({
      type: z.literal('constant'),
      warmup_steps: z.number().int().min(0).default(0).describe('linear warmup from 0 to the peak lr over this many steps'),
    })
    .strict(),
]);

export const trainSchema = z
  .object({
    steps: z.number().int().positive().describe('optimizer steps to train'),
    batch_size: z.number().int().positive().describe('sequences per optimizer step'),
    micro_batch_size: z.number().int().positive().optional().describe('sequences per forward/backward pass; gradients are accumulated over batch_size/micro_batch_size passes (default: batch_size)'),
    seq_len: z.number().int().positive().describe('tokens per sequence (context length)'),
    grad_clip: z.number().min(0).default(1.0).describe('clip gradients to this global L2 norm; 0 turns clipping off'),
    eval_interval: z.number().int().min(0).default(100).describe('evaluate on the validation set every this many steps (and at the end); 0: only at the end'),
    eval_steps: z.number().int().positive().default(10).describe('validation batches per evaluation'),
    log_interval: z.number().int().positive().default(10).describe('write a metrics.jsonl row and a progress line every this many steps'),
    seed: z.number().int().min(0).default(0).describe('seed of the initialisation and of the batch sampler'),
    max_bad_steps: z.number().int().positive().default(5).describe('stop after this many consecutive steps with a non-finite loss or gradient (they are skipped)'),
    max_wall_s: z
      .number()
      .positive()
      .optional()
      .describe('stop with a checkpoint before this many seconds of wall time since the process started (exit 75: resume me); --time-limit sets it from a Slurm-style limit'),
    stop_grace_s: z
      .number()
      .positive()
      .default(20)
      .describe('on SIGINT/SIGTERM, finish the step and checkpoint if that fits in this many seconds, else abandon the step (below Slurm\'s default KillWait of 30 s)'),
  })
  .strict()
  .superRefine((t, ctx) => {
    const micro = t.micro_batch_size ?? t.batch_size;
    if (t.batch_size % micro !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['micro_batch_size'],
        message: `micro_batch_size ${micro} must divide batch_size ${t.batch_size}`,
      });
    }
  });

export const checkpointSchema = z
  .object({
    interval: z.number().int().min(0).default(0).describe('save a checkpoint every this many steps (and at the end); 0: only at the end'),
    interval_s: z.number().min(0).default(0).describe('also save a checkpoint once this many seconds of wall time have passed since the last one; 0: off'),
    keep: z.number().int().min(2).default(2).describe('keep the newest this many checkpoints (at least 2, so one valid survives a crash mid-write)'),
    keep_every: z.number().int().min(0).default(0).describe('also keep every checkpoint whose step is a multiple of this; 0: none'),
  })
  .strict();

export const backendSchema = z
  .enum(['auto', 'tensorflow', 'wasm', 'cpu'])
  .describe('auto: tensorflow (tfjs-node-gpu or tfjs-node) when it loads, else wasm, else cpu');

export const experimentSchema = z
  .object({
    backend: backendSchema.default('auto'),
    model: modelSchema,
    data: dataSchema,
    optimizer: optimizerSectionSchema(),
    schedule: scheduleSchema.default({ type: 'cosine', warmup_steps: 0, min_lr_ratio: 0.1 }),
    train: trainSchema,
    checkpoint: checkpointSchema.default({ interval: 0, interval_s: 0, keep: 2, keep_every: 0 }),
  })
  .strict();

export type ExperimentConfig = z.infer<typeof experimentSchema>;
export type ScheduleConfig = z.infer<typeof scheduleSchema>;
export type TrainConfig = z.infer<typeof trainSchema>;
export type DataConfig = z.infer<typeof dataSchema>;
export type BackendName = z.infer<typeof backendSchema>;
