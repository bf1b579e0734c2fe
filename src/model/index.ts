/**
 * The decoder-only transformer of the SOAP paper (OLMo's shape): token embedding, N pre-norm
 * blocks (LayerNorm without bias; causal attention with RoPE and QK-LayerNorm; GeLU MLP), a final
 * LayerNorm and an untied output head, trained with cross-entropy plus an optional z-loss.
 * Functions over named parameters (dotted paths such as `blocks.3.attn.wq`), no classes.
 */
export { modelSchema } from './config.js';
export type { ModelConfig } from './config.js';
export {
  paramShapes,
  countParams,
  flopsPerToken,
  initParams,
  initStd,
  headDim,
  EMBEDDING_PARAMS,
} from './params.js';
export type { ModelShape, ParamCounts, InitOptions } from './params.js';
export { forward, lossTerms, targetLogits, checkParams } from './forward.js';
export type { Params, LossTerms } from './forward.js';
export { releaseShapeConstants } from './layers.js';
