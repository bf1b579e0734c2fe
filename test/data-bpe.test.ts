import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openTokenDataset } from '../src/data/dataset.js';
import { prepareDataset } from '../src/data/prepare.js';
import { readShardHeader } from '../src/data/shard-format.js';
import { loadTokenizer } from '../src/data/tokenizers/index.js';
import { tempDirs } from './helpers/tmp.js';

const tmp = tempDirs('soap-bpe-');

/** Twelve short documents in a JSONL file, enough for several batches of a tiny batch size. */
function jsonlCorpus(): string {
  const dir = tmp();
  const lines = Array.from({ length: 12 }, (_, i) => JSON.stringify({ text: `Document ${i}: the Union is strong. ${'Mr. Speaker, '.repeat(i)}<|endoftext|> stays text.` }));
  writeFileSync(join(dir, 'docs.jsonl'), `${lines.join('\n')}\n`);
  return dir;
}

test('gpt2 BPE matches known ids, encodes "<|endoftext|>" in text as ordinary text, and round-trips', async () => {
  const gpt2 = await loadTokenizer('gpt2');
  assert.deepEqual([gpt2.vocabSize, gpt2.eotToken], [50257, 50256]);
  assert.deepEqual([...gpt2.encode('Hello world')], [15496, 995]);
  assert.deepEqual([...gpt2.encode('<|endoftext|>')], [27, 91, 437, 1659, 5239, 91, 29]);
  const text = 'Fellow-Citizens of the Senate — ünïcödé 🎉';
  assert.equal(gpt2.decode(gpt2.encode(text)), text);
});

test('gpt2 shards are uint16, identical for 1 and 2 worker threads, and decode back to the text', async () => {
  const dir = jsonlCorpus();
  const outs = [join(tmp(), 'w1'), join(tmp(), 'w2')];
  const one = await prepareDataset({ inputs: [dir], outDir: outs[0], tokenizer: 'gpt2', valTokens: 30, shardTokens: 50, workers: 1 });
  // Batches of about one document: many batches in flight, finishing in any order.
  await prepareDataset({ inputs: [dir], outDir: outs[1], tokenizer: 'gpt2', valTokens: 30, shardTokens: 50, workers: 2, batchChars: 40 });
  const files = readdirSync(outs[0]).sort();
  assert.deepEqual(readdirSync(outs[1]).sort(), files);
  for (const f of files) assert.deepEqual(readFileSync(join(outs[1], f)), readFileSync(join(outs[0], f)), f);
  assert.equal(readShardHeader(join(outs[0], 'train_000000.bin')).variant, 'gpt2');
  assert.ok(one.train.files.length > 2 && one.val.documents >= 1);

  const gpt2 = await loadTokenizer('gpt2');
  const train = openTokenDataset(['train_*.bin'], { baseDirs: [outs[0]], vocabSize: 50257 });
  const val = openTokenDataset(['val_*.bin'], { baseDirs: [outs[0]], vocabSize: 50257 });
  const text = gpt2.decode(train.read(0, train.numTokens)) + gpt2.decode(val.read(0, val.numTokens));
  const docs = readFileSync(join(dir, 'docs.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { text: string }).text);
  assert.equal(text, docs.map((d) => `<|endoftext|>${d}`).join(''));
});

test('a vocabulary past 65,536 ids (cl100k) writes uint32 shards that read back exactly', async () => {
  const dir = jsonlCorpus();
  const out = join(tmp(), 'cl');
  const s = await prepareDataset({ inputs: [dir], outDir: out, tokenizer: 'cl100k' });
  assert.equal(s.variant, 'llama3');
  const header = readShardHeader(join(out, 'train_000000.bin'));
  assert.deepEqual([header.variant, header.tokenBytes, header.numTokens], ['llama3', 4, s.train.tokens]);
  const cl = await loadTokenizer('cl100k');
  const ds = openTokenDataset(['train_*.bin'], { baseDirs: [out], vocabSize: cl.vocabSize });
  const ids = ds.read(0, ds.numTokens);
  assert.equal(ids[0], 100257, 'eot first');
  assert.match(cl.decode(ids), /^<\|endoftext\|>Document 0: the Union is strong\./);
  const docs = readFileSync(join(dir, 'docs.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { text: string }).text);
  assert.equal(cl.decode(ids), docs.map((d) => `<|endoftext|>${d}`).join(''), 'the whole corpus round-trips');
  const text = 'Fellow-Citizens of the Senate — ünïcödé 🎉 日本語';
  assert.equal(cl.decode(cl.encode(text)), text);
});
