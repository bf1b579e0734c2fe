/**
 * Worker thread body for {@link TokenizePool}: encodes batches of documents with the named
 * tokenizer and sends the ids back as one flat, transferred Uint32Array plus per-document lengths.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadTokenizer } from './tokenizers/index.js';
import { encodeBatch, type EncodeRequest } from './tokenize-pool.js';

const tokenizer = await loadTokenizer((workerData as { tokenizer: string }).tokenizer);
const port = parentPort;
if (!port) throw new Error('tokenize-worker.ts runs only as a worker thread');
port.on('message', (req: EncodeRequest) => {
  const result = encodeBatch(tokenizer, req);
  port.postMessage(result, [result.ids.buffer as ArrayBuffer]);
});
port.postMessage({ ready: true });
