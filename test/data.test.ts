import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openTokenDataset, BLOCK_TOKENS, DIRECT_MAX } from '../src/data/dataset.js';
import { expandGlobs } from '../src/data/glob.js';
import { evalBatch, trainBatch } from '../src/data/sampler.js';
import { readShardHeader, writeShard } from '../src/data/shard-format.js';
import { ByteTokenizer, BYTE_EOT } from '../src/data/tokenizers/byte.js';
import { checkModelVocab, datasetVocab } from '../src/data/vocab.js';
import { prepareDataset, META_FORMAT } from '../src/data/prepare.js';
import { SoapTrainError } from '../src/errors.js';
import { soapTrain, tinyExperiment, writeTestShard } from './helpers/tiny-run.js';
import { tempDirs } from './helpers/tmp.js';

const tmp = tempDirs('soap-data-');

/** A shard written field by field with a DataView: the layout the tests pin, independent of the writer. */
function handShard(magic: number, version: number, count: number, tokens: number[], tokenBytes: 2 | 4): Uint8Array {
  const bytes = new Uint8Array(1024 + tokens.length * tokenBytes);
  const view = new DataView(bytes.buffer);
  view.setInt32(0, magic, true);
  view.setInt32(4, version, true);
  view.setInt32(8, count, true);
  tokens.forEach((t, i) => (tokenBytes === 2 ? view.setUint16(1024 + 2 * i, t, true) : view.setUint32(1024 + 4 * i, t, true)));
  return bytes;
}

function expectBadInput(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SoapTrainError, `expected SoapTrainError, got ${String(err)}`);
    assert.equal(err.exitCode, 2);
    assert.match(err.oneLine(), pattern);
    assert.ok(!err.oneLine().includes('\n'));
    return true;
  });
}

test('writeShard writes the llm.c byte layout: gpt2 (uint16), llama3 (uint32) and raw', () => {
  const dir = tmp();
  const tokens = [0, 1, 255, 256, 50256, 65535];
  writeShard(join(dir, 'a.bin'), tokens, { variant: 'gpt2' });
  assert.deepEqual(new Uint8Array(readFileSync(join(dir, 'a.bin'))), handShard(20240520, 1, 6, tokens, 2));
  const wide = [...tokens, 65536, 128255, 2 ** 31 - 1];
  writeShard(join(dir, 'b.bin'), wide, { variant: 'llama3' });
  assert.deepEqual(new Uint8Array(readFileSync(join(dir, 'b.bin'))), handShard(20240801, 7, 9, wide, 4));
  writeShard(join(dir, 'c.bin'), tokens, { variant: 'raw' });
  assert.deepEqual(new Uint8Array(readFileSync(join(dir, 'c.bin'))), handShard(0, 0, 0, tokens, 2).subarray(1024));
  assert.deepEqual(readdirSync(dir).sort(), ['a.bin', 'b.bin', 'c.bin'], 'no temp files left behind');
  assert.throws(() => writeShard(join(dir, 'd.bin'), [65536], { variant: 'gpt2' }), RangeError);
  assert.deepEqual(readdirSync(dir).sort(), ['a.bin', 'b.bin', 'c.bin'], 'a failed write leaves nothing');

  assert.deepEqual(readShardHeader(join(dir, 'a.bin')), { file: join(dir, 'a.bin'), variant: 'gpt2', headerBytes: 1024, tokenBytes: 2, numTokens: 6, fileBytes: 1036 });
  assert.equal(readShardHeader(join(dir, 'b.bin')).variant, 'llama3');
  assert.equal(readShardHeader(join(dir, 'c.bin'), { raw: true }).numTokens, 6);
});

test('hand-written shards of both variants and raw files read back token for token', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'x_0.bin'), handShard(20240520, 1, 3, [7, 8, 9], 2));
  writeFileSync(join(dir, 'y_0.bin'), handShard(20240801, 7, 2, [100000, 5], 4));
  const raw = new Uint8Array(4);
  new DataView(raw.buffer).setUint16(0, 513, true);
  new DataView(raw.buffer).setUint16(2, 1, true);
  writeFileSync(join(dir, 'z.bin'), raw);
  const base = { baseDirs: [dir] };
  assert.deepEqual([...openTokenDataset(['x_*.bin'], base).read(0, 3)], [7, 8, 9]);
  assert.deepEqual([...openTokenDataset(['y_*.bin'], base).read(0, 2)], [100000, 5]);
  assert.deepEqual([...openTokenDataset(['z.bin'], { ...base, raw: true }).read(0, 2)], [513, 1]);
});

test('every bad shard is a one-line bad-input error naming the file and the problem', () => {
  const dir = tmp();
  const put = (name: string, bytes: Uint8Array) => {
    writeFileSync(join(dir, name), bytes);
    return join(dir, name);
  };
  expectBadInput(() => readShardHeader(put('magic.bin', handShard(12345, 1, 1, [1], 2))), /magic\.bin: bad magic number 12345/);
  expectBadInput(() => readShardHeader(put('version.bin', handShard(20240520, 3, 1, [1], 2))), /version\.bin: unknown shard version 3/);
  expectBadInput(() => readShardHeader(put('short.bin', handShard(20240520, 1, 5, [1, 2], 2))), /short\.bin: header says 5 tokens \(1034 bytes\) but the file has 1028 bytes/);
  expectBadInput(() => readShardHeader(put('tiny.bin', new Uint8Array(10))), /tiny\.bin: too short for a shard header/);
  expectBadInput(() => readShardHeader(put('odd.bin', new Uint8Array(3)), { raw: true }), /odd\.bin: raw uint16 token file has an odd size/);
  expectBadInput(() => openTokenDataset(['magic.bin'], { baseDirs: [dir] }), /magic\.bin: bad magic/);

  put('vocab.bin', handShard(20240520, 1, 4, [1, 2, 300, 4], 2));
  const ds = openTokenDataset(['vocab.bin'], { baseDirs: [dir], vocabSize: 256 });
  assert.deepEqual([...ds.read(0, 2)], [1, 2], 'ids are checked as they are read');
  expectBadInput(() => ds.read(1, 3), /vocab\.bin: token 2 is id 300, not below the vocab size 256/);
  ds.close();
  // The same through the block cache (a window longer than the direct-read limit).
  const big = Array.from({ length: DIRECT_MAX + 10 }, (_, i) => (i === DIRECT_MAX + 5 ? 999 : i % 256));
  writeShard(join(dir, 'vocab2.bin'), big);
  const ds2 = openTokenDataset(['vocab2.bin'], { baseDirs: [dir], vocabSize: 256 });
  expectBadInput(() => ds2.read(0, DIRECT_MAX + 10), new RegExp(`vocab2\\.bin: token ${DIRECT_MAX + 5} is id 999`));
  ds2.close();

  expectBadInput(
    () => openTokenDataset(['nothere/train_*.bin'], { baseDirs: [dir], field: 'data.train', configFile: 'tiny.yaml' }),
    /^tiny\.yaml: data\.train: no files match "nothere\/train_\*\.bin" \(run `soap-train prepare .*` or fix the glob\)$/,
  );
});

test('globs: *, ?, ** and [..] match sorted by code point; the first base directory with a match wins', () => {
  const a = tmp();
  const b = tmp();
  mkdirSync(join(a, 'd', 'e'), { recursive: true });
  for (const f of ['t_10.bin', 't_2.bin', 'T_1.bin', 'd/t_3.bin', 'd/e/t_4.bin', '.t_hidden.bin']) writeFileSync(join(a, f), '');
  writeFileSync(join(b, 'only_b.bin'), '');
  const rel = (files: string[]) => files.map((f) => f.slice(a.length + 1));
  assert.deepEqual(rel(expandGlobs(['t_*.bin'], [a]).files), ['t_10.bin', 't_2.bin']);
  assert.deepEqual(rel(expandGlobs(['?_*.bin'], [a]).files), ['T_1.bin', 't_10.bin', 't_2.bin']);
  assert.deepEqual(rel(expandGlobs(['**/t_*.bin'], [a]).files), ['d/e/t_4.bin', 'd/t_3.bin', 't_10.bin', 't_2.bin']);
  assert.deepEqual(rel(expandGlobs(['t_[12]*.bin'], [a]).files), ['t_10.bin', 't_2.bin']);
  assert.deepEqual(expandGlobs(['only_b.bin', 't_2.bin'], [a, b]).files, [join(b, 'only_b.bin'), join(a, 't_2.bin')]);
  assert.deepEqual(expandGlobs(['none_*.bin'], [a, b]).unmatched, ['none_*.bin']);
});

test('windows across shard and cache-block boundaries equal the concatenated tokens', () => {
  const dir = tmp();
  const sizes = [5, BLOCK_TOKENS + 17, 0, 3, 2 * BLOCK_TOKENS + 1];
  const all: number[] = [];
  sizes.forEach((n, s) => {
    const tokens = Array.from({ length: n }, (_, i) => (s * 7919 + i * 31) % 50000);
    for (const t of tokens) all.push(t);
    writeShard(join(dir, `train_${String(s).padStart(6, '0')}.bin`), tokens);
  });
  // Short windows first, on a fresh reader (direct reads), then again through the filled cache.
  const fresh = openTokenDataset(['train_*.bin'], { baseDirs: [dir], vocabSize: 50257 });
  for (const [start, len] of [[3, 4], [BLOCK_TOKENS - 3, 10], [all.length - 7, 7], [4, 4000]]) {
    assert.deepEqual([...fresh.read(start, len)], all.slice(start, start + len), `direct window ${start}+${len}`);
  }
  fresh.close();
  const ds = openTokenDataset(['train_*.bin'], { baseDirs: [dir], vocabSize: 50257 });
  assert.equal(ds.numTokens, all.length);
  assert.equal(ds.files.length, 5);
  for (const [start, len] of [[0, all.length], [3, 4], [4, 1], [5 + BLOCK_TOKENS + 15, 6], [BLOCK_TOKENS - 3, 10], [all.length - 7, 7], [17, 0]]) {
    assert.deepEqual([...ds.read(start, len)], all.slice(start, start + len), `window ${start}+${len}`);
  }
  assert.throws(() => ds.read(all.length - 1, 2), RangeError);
  ds.close();
});

test('batches are a pure function of (seed, step, micro); targets are the inputs shifted by one', () => {
  const dir = tmp();
  const tokens = Array.from({ length: 10000 }, (_, i) => i % 60000);
  writeShard(join(dir, 'train_000000.bin'), tokens.slice(0, 4000));
  writeShard(join(dir, 'train_000001.bin'), tokens.slice(4000));
  const ds = openTokenDataset(['train_*.bin'], { baseDirs: [dir] });
  const opts = { seed: 1, step: 7, micro: 0, batchSize: 4, seqLen: 32 };
  const a = trainBatch(ds, opts);
  const again = trainBatch(openTokenDataset(['train_*.bin'], { baseDirs: [dir] }), opts);
  assert.deepEqual(a, again, 'same (seed, step, micro) → same batch, even from a fresh reader');
  for (const other of [{ step: 8 }, { micro: 1 }, { seed: 2 }]) {
    assert.notDeepEqual(trainBatch(ds, { ...opts, ...other }).inputs, a.inputs, JSON.stringify(other));
  }
  assert.equal(a.inputs.length, 4 * 32);
  for (let r = 0; r < 4; r++) {
    const row = a.inputs.subarray(r * 32, r * 32 + 32);
    const next = a.targets.subarray(r * 32, r * 32 + 32);
    // The data is 0, 1, 2, …, so each window is consecutive integers and targets = inputs + 1.
    for (let t = 0; t < 32; t++) assert.equal(next[t], row[t] + 1);
    if (r > 0) assert.notEqual(row[0], a.inputs[0], 'rows draw different windows');
  }
  // Starts cover the whole stream (including the second shard) over many steps.
  let maxStart = 0;
  for (let step = 0; step < 200; step++) maxStart = Math.max(maxStart, trainBatch(ds, { ...opts, step }).inputs[0]);
  assert.ok(maxStart > 9000, `max start ${maxStart}`);

  const e0 = evalBatch(ds, { index: 0, batchSize: 4, seqLen: 32 });
  assert.deepEqual(evalBatch(ds, { index: 0, batchSize: 4, seqLen: 32 }), e0, 'eval windows are fixed');
  assert.notDeepEqual(evalBatch(ds, { index: 1, batchSize: 4, seqLen: 32 }).inputs, e0.inputs);
  const starts = Array.from({ length: 4 }, (_, r) => e0.inputs[r * 32]).sort((x, y) => x - y);
  assert.ok(starts[3] - starts[0] > 5000, `eval windows spread over the set: ${starts.join(',')}`);
  for (let t = 0; t < e0.inputs.length; t++) assert.equal(e0.targets[t], e0.inputs[t] + 1);

  const small = openTokenDataset(['train_000000.bin'], { baseDirs: [dir] });
  expectBadInput(() => trainBatch(small, { ...opts, seqLen: 4000 }), /train\.seq_len: training data holds 4000 tokens, fewer than seq_len \+ 1 = 4001/);
});

test('byte tokenizer round-trips UTF-8 text and never emits its end-of-text byte', () => {
  const tok = new ByteTokenizer();
  const text = 'Fellow-Citizens — ünïcödé 日本語 🎉\n\ttabs & "quotes"\u0000nul';
  const ids = tok.encode(text);
  assert.equal(tok.vocabSize, 256);
  assert.equal(tok.eotToken, BYTE_EOT);
  assert.ok(![...ids].includes(BYTE_EOT));
  assert.equal(tok.decode(ids), text);
  assert.equal(tok.decode([BYTE_EOT, ...tok.encode('a'), BYTE_EOT, ...tok.encode('b')]), '<|endoftext|>a<|endoftext|>b');
  assert.ok(![...tok.encode('lone \ud800 surrogate')].includes(BYTE_EOT));
});

/** A prepare-style folder: one small shard and a meta.json naming the tokenizer. */
function preparedDir(tokenizer: string, vocabSize: number, meta: string | null = null): string {
  const dir = tmp();
  writeShard(join(dir, 'train_000000.bin'), [1, 2, 3, 4]);
  const body = { format: META_FORMAT, tokenizer: { name: tokenizer, vocab_size: vocabSize, eot_token: vocabSize - 1 } };
  writeFileSync(join(dir, 'meta.json'), meta ?? JSON.stringify(body));
  return dir;
}

test('the model must cover the dataset vocabulary from meta.json: the error names both numbers', async () => {
  const gpt2 = preparedDir('gpt2', 50257);
  const ds = openTokenDataset(['train_*.bin'], { baseDirs: [gpt2] });
  assert.deepEqual(datasetVocab(ds), { vocabSize: 50257, tokenizer: 'gpt2', metaFile: join(gpt2, 'meta.json') });
  expectBadInput(
    () => checkModelVocab(ds, 256, { configFile: 'tiny.yaml', field: 'model.vocab_size' }),
    new RegExp(`^tiny\\.yaml: model\\.vocab_size: 256 is smaller than the dataset's vocabulary 50257 \\(${join(gpt2, 'meta.json')}, tokenizer gpt2\\) \\(set model\\.vocab_size ≥ 50257\\)$`),
  );
  assert.equal(checkModelVocab(ds, 50257)?.vocabSize, 50257, 'equal is enough');
  assert.equal(checkModelVocab(ds, 50304)?.tokenizer, 'gpt2', 'a padded, larger vocabulary is fine');
  ds.close();

  // Through a real prepare: byte-level data (vocabulary 256) against a 128-entry model.
  const out = join(tmp(), 'ds');
  const src = tmp();
  writeFileSync(join(src, 'a.txt'), 'hello there');
  await prepareDataset({ inputs: [src], outDir: out, tokenizer: 'byte' });
  const bytes = openTokenDataset(['train_*.bin'], { baseDirs: [out] });
  expectBadInput(() => checkModelVocab(bytes, 128), /model\.vocab_size: 128 is smaller than the dataset's vocabulary 256 \(.*meta\.json, tokenizer byte\)/);
  bytes.close();
});

test('shards without a soap-train meta.json skip the vocabulary check; disagreeing or corrupt ones are errors', () => {
  const bare = tmp();
  writeShard(join(bare, 'train_000000.bin'), [1, 2, 3]);
  const plain = openTokenDataset(['train_*.bin'], { baseDirs: [bare] });
  assert.equal(datasetVocab(plain), null);
  assert.equal(checkModelVocab(plain, 4), null, 'llm.c shards: only the streamed id check applies');

  const foreign = preparedDir('x', 1, JSON.stringify({ vocab: 99 }));
  assert.equal(datasetVocab(openTokenDataset(['train_*.bin'], { baseDirs: [foreign] })), null, "another tool's meta.json is not ours");

  const gpt2 = preparedDir('gpt2', 50257);
  const byte = preparedDir('byte', 256);
  const train = openTokenDataset(['train_*.bin'], { baseDirs: [gpt2] });
  const val = openTokenDataset(['train_*.bin'], { baseDirs: [byte] });
  expectBadInput(() => checkModelVocab([train, val], 60000), /meta\.json: tokenizer byte \(vocabulary 256\) differs from .*meta\.json: tokenizer gpt2 \(vocabulary 50257\)/);
  const mixed = openTokenDataset([join(gpt2, 'train_*.bin'), join(bare, 'train_*.bin')], { baseDirs: [] });
  assert.equal(datasetVocab([mixed, plain])?.vocabSize, 50257, 'folders without a meta.json are left out');

  const broken = preparedDir('gpt2', 50257, '{"format": "soap-train.tokens/1", "tok');
  expectBadInput(() => datasetVocab(openTokenDataset(['train_*.bin'], { baseDirs: [broken] })), /meta\.json: cannot read the dataset's meta\.json/);
  const noVocab = preparedDir('gpt2', 50257, JSON.stringify({ format: META_FORMAT, tokenizer: { name: 'gpt2' } }));
  expectBadInput(() => datasetVocab(openTokenDataset(['train_*.bin'], { baseDirs: [noVocab] })), /meta\.json: tokenizer: meta\.json has no valid tokenizer\.name \/ tokenizer\.vocab_size/);
});

test('training on a bad shard exits 2 with one line naming the file, before a run directory exists', () => {
  const exp = tinyExperiment();
  const shard = join(exp.dir, 'data', 'train_000000.bin');
  writeFileSync(shard, handShard(20240520, 1, 9, [1, 2], 2));
  const r = soapTrain(['--config', exp.config, '--name', 'bad'], exp.dir);
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr.trim(), `soap-train: error: ${shard}: header says 9 tokens (1042 bytes) but the file has 1028 bytes (the shard is truncated or corrupt: regenerate it with \`soap-train prepare\`)`);
  assert.ok(!existsSync(join(exp.dir, 'runs')), 'nothing written');

  // An id ≥ the model's vocabulary is found as the batches stream: still one line, exit 2.
  writeTestShard(shard, Array.from({ length: 20000 }, (_, i) => (i % 97 === 50 ? 300 : i % 200)));
  const ids = soapTrain(['--config', exp.config, '--name', 'ids'], exp.dir);
  assert.equal(ids.status, 2, ids.stderr);
  assert.match(ids.stderr, /soap-train: error: .*train_000000\.bin: token \d+ is id 300, not below the vocab size 256/);
  assert.equal(ids.stderr.split('\n').filter((l) => l.includes('error')).length, 1, ids.stderr);
});
