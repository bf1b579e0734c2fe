import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openTokenDataset } from '../src/data/dataset.js';
import { prepareDataset, type DatasetMeta } from '../src/data/prepare.js';
import { BYTE_EOT, ByteTokenizer } from '../src/data/tokenizers/byte.js';
import { SoapTrainError } from '../src/errors.js';
import { tempDirs } from './helpers/tmp.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const tmp = tempDirs('soap-prep-');
const tok = new ByteTokenizer();

/** A small corpus: three .txt files (one empty), one JSONL with two docs, and an ignored .json. */
function corpus(): string {
  const dir = join(tmp(), 'in');
  mkdirSync(join(dir, 'sub'), { recursive: true });
  writeFileSync(join(dir, 'b.txt'), 'Second document: ünïcödé.\n');
  writeFileSync(join(dir, 'a.txt'), 'First document.');
  writeFileSync(join(dir, 'empty.txt'), '');
  writeFileSync(join(dir, 'sub', 'c.jsonl'), '{"text": "third", "id": 1}\n\n{"text": "fourth 🎉"}\n');
  writeFileSync(join(dir, 'ignored.json'), '{"text": "not read"}');
  return dir;
}

async function rejectsBadInput(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof SoapTrainError, String(err));
    assert.equal(err.exitCode, 2);
    assert.match(err.oneLine(), pattern);
    return true;
  });
}

test('text → shards → tokens → text round-trips, eot before each document, sorted inputs', async () => {
  const out = join(tmp(), 'ds');
  const summary = await prepareDataset({ inputs: [corpus()], outDir: out, tokenizer: 'byte', shardTokens: 16 });
  const docs = ['First document.', 'Second document: ünïcödé.\n', 'third', 'fourth 🎉'];
  const expected = docs.flatMap((d) => [BYTE_EOT, ...tok.encode(d)]);
  assert.equal(summary.train.tokens, expected.length);
  assert.equal(summary.train.documents, 4);
  assert.equal(summary.train.files.length, Math.ceil(expected.length / 16), 'shards of 16 tokens, documents straddling them');
  assert.equal(summary.val.tokens, 0);
  const ds = openTokenDataset(['train_*.bin'], { baseDirs: [out], vocabSize: 256 });
  const ids = ds.read(0, ds.numTokens);
  assert.deepEqual([...ids], expected);
  assert.equal(tok.decode(ids), docs.map((d) => `<|endoftext|>${d}`).join(''));

  const meta = JSON.parse(readFileSync(join(out, 'meta.json'), 'utf8')) as DatasetMeta;
  assert.deepEqual(meta.tokenizer, { name: 'byte', vocab_size: 256, eot_token: 255 });
  assert.deepEqual(meta.sources.map((s) => [s.path.split('/').slice(-1)[0], s.documents]), [['a.txt', 1], ['b.txt', 1], ['empty.txt', 0], ['c.jsonl', 2]]);
  assert.match(meta.sources[0].sha256, /^[0-9a-f]{64}$/);
});

test('validation holds out the last whole documents with at least --val-tokens tokens', async () => {
  const out = join(tmp(), 'ds');
  // Documents of 1 + 5 tokens each: asking for 7 val tokens takes the last two (12 tokens).
  const dir = tmp();
  for (let i = 0; i < 5; i++) writeFileSync(join(dir, `d${i}.txt`), `doc_${i}`);
  const s = await prepareDataset({ inputs: [dir], outDir: out, tokenizer: 'byte', valTokens: 7 });
  assert.deepEqual([s.train.documents, s.train.tokens, s.val.documents, s.val.tokens], [3, 18, 2, 12]);
  assert.deepEqual(readdirSync(out).sort(), ['meta.json', 'train_000000.bin', 'val_000000.bin']);
  const val = openTokenDataset(['val_*.bin'], { baseDirs: [out] });
  assert.equal(tok.decode(val.read(0, val.numTokens)), '<|endoftext|>doc_3<|endoftext|>doc_4');
  await rejectsBadInput(prepareDataset({ inputs: [dir], outDir: join(tmp(), 'x'), tokenizer: 'byte', valTokens: 100 }), /--val-tokens: holding out 100 validation tokens leaves nothing to train on/);
});

test('two runs over the same inputs are byte-identical, input order does not matter', async () => {
  const dir = corpus();
  const a = join(tmp(), 'a');
  const b = join(tmp(), 'b');
  await prepareDataset({ inputs: [dir], outDir: a, tokenizer: 'byte', shardTokens: 10, valTokens: 9 });
  await prepareDataset({ inputs: [join(dir, 'sub', '*.jsonl'), join(dir, '*.txt')], outDir: b, tokenizer: 'byte', shardTokens: 10, valTokens: 9 });
  const files = readdirSync(a).sort();
  assert.deepEqual(readdirSync(b).sort(), files);
  assert.ok(files.length > 3);
  for (const f of files) assert.deepEqual(readFileSync(join(b, f)), readFileSync(join(a, f)), f);
});

test('an existing dataset is kept with ifMissing, refused without force, replaced with force', async () => {
  const dir = corpus();
  const out = join(tmp(), 'ds');
  await prepareDataset({ inputs: [dir], outDir: out, tokenizer: 'byte', shardTokens: 10 });
  const before = readdirSync(out).length;
  assert.equal((await prepareDataset({ inputs: [dir], outDir: out, tokenizer: 'byte', ifMissing: true })).skipped, true);
  await rejectsBadInput(prepareDataset({ inputs: [dir], outDir: out, tokenizer: 'byte' }), /meta\.json: already holds a prepared dataset \(pass --force/);
  const s = await prepareDataset({ inputs: [dir], outDir: out, tokenizer: 'byte', force: true });
  assert.equal(s.train.files.length, 1, 'bigger shards now');
  assert.equal(readdirSync(out).length, 2, `the ${before - 1} old shards are gone`);
});

test('bad inputs are one-line errors: JSONL line without the field, invalid JSON, empty input, unknown tokenizer', async () => {
  const dir = tmp();
  writeFileSync(join(dir, 'bad.jsonl'), '{"text": "ok"}\n{"body": "no text"}\n');
  await rejectsBadInput(prepareDataset({ inputs: [join(dir, 'bad.jsonl')], outDir: join(dir, 'o1'), tokenizer: 'byte' }), /bad\.jsonl:2: text: field "text" is missing \(set --text-field/);
  const s = await prepareDataset({ inputs: [join(dir, 'bad.jsonl')], outDir: join(dir, 'o1b'), tokenizer: 'byte', textField: 'body', force: true }).catch((e: Error) => e);
  assert.ok(s instanceof SoapTrainError && /bad\.jsonl:1: body: field "body" is missing/.test(s.oneLine()));
  writeFileSync(join(dir, 'json.jsonl'), '{"text": 5}\n{oops\n');
  await rejectsBadInput(prepareDataset({ inputs: [join(dir, 'json.jsonl')], outDir: join(dir, 'o2'), tokenizer: 'byte' }), /json\.jsonl:1: text: field "text" is a number, not a string/);
  writeFileSync(join(dir, 'e.txt'), '');
  await rejectsBadInput(prepareDataset({ inputs: [join(dir, 'e.txt')], outDir: join(dir, 'o3'), tokenizer: 'byte' }), /--input: the inputs hold no text/);
  await rejectsBadInput(prepareDataset({ inputs: [join(dir, 'nope_*.txt')], outDir: join(dir, 'o4'), tokenizer: 'byte' }), /--input: no files match/);
  const emptyDir = join(dir, 'emptydir');
  mkdirSync(emptyDir);
  await rejectsBadInput(prepareDataset({ inputs: [emptyDir], outDir: join(dir, 'o5'), tokenizer: 'byte' }), /holds no \.txt or \.jsonl files/);
  await rejectsBadInput(prepareDataset({ inputs: [dir], outDir: join(dir, 'o6'), tokenizer: 'klingon' }), /--tokenizer: unknown tokenizer "klingon"/);
  writeFileSync(join(dir, 'latin1.txt'), Buffer.from([0x63, 0x61, 0x66, 0xe9]));
  await rejectsBadInput(prepareDataset({ inputs: [join(dir, 'latin1.txt')], outDir: join(dir, 'o7'), tokenizer: 'byte' }), /latin1\.txt: not valid UTF-8/);
  for (const o of ['o1', 'o2', 'o3', 'o7']) assert.deepEqual(readdirSync(join(dir, o)), [], `${o}: no shards or temp files left`);
});

test('standard input as JSONL', async () => {
  const out = join(tmp(), 'ds');
  const stdin = Readable.from([Buffer.from('{"text": "from'), Buffer.from(' stdin"}\n{"text": "two"}')]);
  const s = await prepareDataset({ inputs: ['-'], outDir: out, tokenizer: 'byte', stdinFormat: 'jsonl', stdin });
  assert.equal(s.train.documents, 2);
  const ds = openTokenDataset(['train_*.bin'], { baseDirs: [out] });
  assert.equal(tok.decode(ds.read(0, ds.numTokens)), '<|endoftext|>from stdin<|endoftext|>two');
});

test('the prepare CLI writes a dataset and exits 2 with one line on bad input', () => {
  const dir = corpus();
  const out = join(tmp(), 'ds');
  const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(REPO, 'src', 'cli', 'prepare.ts'), ...args], { encoding: 'utf8', cwd: REPO });
  const ok = cli(['--input', dir, '--out', out, '--val-tokens', '10', '--shard-tokens', '1k']);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /prepare: .*: 53 train tokens in 1 shard\(s\) \(3 docs\), 12 val tokens/);
  const bad = cli(['--input', dir, '--out', out, '--val-tokens', 'lots']);
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr.trim(), 'soap-train: error: --val-tokens: "lots" is not a whole token count (write e.g. 500000, 500k or 100M)');
});
