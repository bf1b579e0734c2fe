/**
 * The optimizers' side of the host linear algebra: turning a request (a tensor read off the
 * device) into a host job, and deciding where SOAP's refresh QR runs. The jobs themselves and
 * the code that runs them are in job-runner.ts (re-exported here), which the pool's workers load
 * without this module: this one needs TensorFlow.js (`qrPlacement` asks for the backend), and a
 * worker that loaded tfjs would start 0.4–1 s later.
 */
import { tf } from '../../tf.js';
import type { MatrixRequest } from '../types.js';
import type { HostJob } from './job-runner.js';
import { symmetrize } from './matrix.js';
import { loadNativeLapack } from './native.js';

export {
  gramEighRates,
  hostJobBuffers,
  hostJobFlops,
  linalgMethod,
  runHostJob,
  type HostJob,
  type HostResult,
  type LinalgMethod,
} from './job-runner.js';

/**
 * The job for an optimizer's request, given its input read off the device: statistics are
 * symmetrized in float64 (the device's float32 products are symmetric only to rounding), a
 * root's input is divided by its bias correction in float64.
 */
export function jobOf(request: MatrixRequest, data: Float32Array): HostJob {
  const [rows, cols = rows] = request.input.shape;
  switch (request.op) {
    case 'eigh':
      return { op: 'eigh', n: rows, a: symmetrize(data, rows) };
    case 'gram_eigh':
      return { op: 'gram_eigh', rows, cols, g: Float64Array.from(data), left: request.left, right: request.right };
    case 'qr':
      // A copy: the pool transfers the job's buffer, and `data` may be shared with the tensor.
      return { op: 'qr', n: rows, a: Float32Array.from(data) };
    case 'inverse_root': {
      const a = symmetrize(data, rows);
      for (let k = 0; k < a.length; k++) a[k] /= request.divide;
      return { op: 'inverse_root', n: rows, a, root: request.root, epsilon: request.epsilon };
    }
  }
}

/** Below this size the host QR (TypeScript, float64) beats the device's blocked one (op overhead). */
const DEVICE_QR_MIN = 64;

/**
 * Where SOAP's refresh QR runs: on the host with LAPACK when the binding loaded (and the backend
 * is not a GPU, whose QR by matMuls is faster than a round trip), else on the device from
 * DEVICE_QR_MIN up (blocked Householder by matMuls), else the TypeScript host QR. The device/host
 * threshold needs re-measuring: the previous landing measured 1024² at 0.39 s on wasm against
 * 2.0 s on the host, but bench/linalg.ts on a loaded machine (2026-12-02) gave 6.3 s vs 4.6 s.
 */
export function qrPlacement(n: number): 'host' | 'device' {
  if (loadNativeLapack() && tf.getBackend() !== 'tensorflow') return 'host';
  return n >= DEVICE_QR_MIN ? 'device' : 'host';
}

