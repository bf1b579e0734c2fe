/**
 * The single TensorFlow.js instance soap-train uses. `@tensorflow/tfjs` (the union package) is
 * imported rather than tfjs-core because only it registers the gradient functions in Node.
 * Every module imports `tf` from here so that backends registered later (wasm, tensorflow)
 * attach to the same engine.
 */
import * as tf from '@tensorflow/tfjs';

export { tf };
export type { Tensor, Variable, Scalar, Rank, NamedTensorMap } from '@tensorflow/tfjs';
