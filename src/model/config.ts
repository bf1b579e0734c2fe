/**
 * The `model:` config section: a decoder-only transformer in the SOAP paper's (OLMo's) shape.
 */
import { z } from 'zod';

export const modelSchema = z
  .object({
    vocab_size: z.number().int().positive().describe('vocabulary size (rows of the embedding and the output head)'),
    d_model: z.number().int().positive().describe('width of the residual stream'),
    n_layers: z.number().int().positive().describe('number of transformer blocks'),
    n_heads: z.number().int().positive().describe('attention heads; must divide d_model into an even head size (RoPE)'),
    mlp_hidden: z.number().int().positive().describe('hidden width of the GeLU MLP (4·d_model in the paper)'),
    z_loss: z.number().min(0).default(1e-4).describe('coefficient of the z-loss, z·mean(logsumexp(logits)²); 0 turns it off'),
    rope_base: z.number().positive().default(10000).describe('RoPE base frequency'),
    norm_eps: z.number().positive().default(1e-5).describe('LayerNorm epsilon'),
    init_std: z.number().positive().default(0.02).describe('standard deviation of the normal initialisation of weight matrices'),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.d_model % m.n_heads !== 0 || (m.d_model / m.n_heads) % 2 !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['n_heads'],
        message: `n_heads ${m.n_heads} must divide d_model ${m.d_model} into an even head size (RoPE rotates pairs)`,
      });
    }
  });

export type ModelConfig = z.infer<typeof modelSchema>;
