/**
 * The tensors.bin/index.json format: alignment, scalars and empty arrays, the keys it accepts,
 * and the index and file damage the reader refuses (always a bad-input error naming the file).
 */
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readTensorFile, writeTensorFile, type TensorEntry, type TensorIndex } from '../src/checkpoint/tensor-file.js';
import { SoapTrainError } from '../src/errors.js';
import { tempDirs } from './helpers/tmp.js';

const tempDir = tempDirs('soap-tensor-file-');

const f32 = (...v: number[]): TensorEntry => ({ dtype: 'float32', shape: [v.length], data: new Float32Array(v) });
const ENTRIES: Array<[string, TensorEntry]> = [
  ['params/odd', f32(1, 2, 3)], // 12 bytes: the next array starts at 16
  ['params/scalar', { dtype: 'float32', shape: [], data: new Float32Array([42]) }],
  ['params/empty', { dtype: 'float32', shape: [0, 4], data: new Float32Array(0) }],
  ['optim/odd/step', { dtype: 'int32', shape: [1, 1], data: new Int32Array([-5]) }],
];

async function written(): Promise<{ dir: string; index: TensorIndex; sha256: string }> {
  const dir = tempDir();
  const out = await writeTensorFile(dir, ENTRIES);
  return { dir, index: out.index, sha256: out.tensors.sha256 };
}

const refused = (pattern: RegExp) => (err: unknown) => err instanceof SoapTrainError && err.exitCode === 2 && pattern.test(err.oneLine());

test('arrays start on 8-byte boundaries; scalars and empty arrays round-trip', async () => {
  const { dir, index, sha256 } = await written();
  assert.deepEqual(
    Object.entries(index.tensors).map(([k, e]) => [k, e.offset, e.bytes]),
    [['params/odd', 0, 12], ['params/scalar', 16, 4], ['params/empty', 24, 0], ['optim/odd/step', 24, 4]],
  );
  assert.equal(readFileSync(join(dir, 'tensors.bin')).length, 28);
  const back = readTensorFile(dir, { expectSha256: sha256 });
  for (const [key, entry] of ENTRIES) {
    assert.deepEqual(back.get(key), { ...entry, shape: [...entry.shape] }, key);
    assert.equal(back.get(key)!.data.byteOffset, 0, 'each array owns an aligned buffer');
  }
});

test('keys other than params/<name> and optim/<name>/<state>, or written twice, are refused', async () => {
  await assert.rejects(writeTensorFile(tempDir(), [['weights/x', f32(1)]]), /neither params\/<name> nor optim/);
  await assert.rejects(writeTensorFile(tempDir(), [['optim/x', f32(1)]]), /neither params\/<name> nor optim/);
  await assert.rejects(writeTensorFile(tempDir(), [['params/x', f32(1)], ['params/x', f32(2)]]), /written twice/);
});

test('a data file longer or shorter than its index, or with another hash, is refused', async () => {
  const { dir, sha256 } = await written();
  appendFileSync(join(dir, 'tensors.bin'), new Uint8Array(8));
  assert.throws(() => readTensorFile(dir), refused(/tensors\.bin: has 36 bytes, the index describes 28/));
  const bytes = readFileSync(join(dir, 'tensors.bin')).subarray(0, 28);
  bytes[0] ^= 1;
  writeFileSync(join(dir, 'tensors.bin'), bytes);
  assert.ok(readTensorFile(dir), 'without an expected hash, sizes are all that is checked');
  assert.throws(() => readTensorFile(dir, { expectSha256: sha256 }), refused(/tensors\.bin: checksum mismatch/));
});

test('malformed index entries are refused with the entry named', async () => {
  const cases: Array<[string, (i: TensorIndex) => void, RegExp]> = [
    ['misaligned', (i) => (i.tensors['params/scalar'].offset = 12), /entry params\/scalar is malformed/],
    ['overlapping', (i) => (i.tensors['params/scalar'].offset = 8), /entry params\/scalar is malformed/],
    ['size off', (i) => (i.tensors['params/odd'].bytes = 16), /entry params\/odd is malformed/],
    ['dtype', (i) => ((i.tensors['params/odd'] as { dtype: string }).dtype = 'float16'), /dtype float16/],
    ['shape', (i) => (i.tensors['params/odd'].shape = [-3]), /shape \[-3\]/],
    ['format', (i) => ((i as { format: number }).format = 2), /unknown tensor index format 2/],
  ];
  for (const [label, damage, pattern] of cases) {
    const { dir, index } = await written();
    damage(index);
    writeFileSync(join(dir, 'index.json'), JSON.stringify(index));
    assert.throws(() => readTensorFile(dir), refused(pattern), label);
  }
  const { dir } = await written();
  writeFileSync(join(dir, 'index.json'), '{"format": 1, "tens');
  assert.throws(() => readTensorFile(dir), refused(/index\.json: is unreadable/));
});
