/**
 * The tensors.bin/index.json format: alignment, scalars and empty arrays, the keys it accepts,
 * the index and file damage the reader refuses (always a SoapTrainError naming the file), and
 * reading: verification in a bounded streaming pass, then one tensor at a time.
 */
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, readSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openTensorFile, writeTensorFile, type FileReader, type OpenOptions, type TensorEntry, type TensorIndex } from '../src/checkpoint/tensor-file.js';
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

/** Every tensor of a folder, read one by one after `openTensorFile`'s checks. */
function readAll(dir: string, opts: OpenOptions = {}): Map<string, TensorEntry> {
  const file = openTensorFile(dir, opts);
  return new Map(Object.keys(file.index.tensors).map((key) => [key, file.readTensor(key)]));
}

const refused = (pattern: RegExp) => (err: unknown) => err instanceof SoapTrainError && err.exitCode === 2 && pattern.test(err.oneLine());

test('arrays start on 8-byte boundaries; scalars and empty arrays round-trip', async () => {
  const { dir, index, sha256 } = await written();
  assert.deepEqual(
    Object.entries(index.tensors).map(([k, e]) => [k, e.offset, e.bytes]),
    [['params/odd', 0, 12], ['params/scalar', 16, 4], ['params/empty', 24, 0], ['optim/odd/step', 24, 4]],
  );
  assert.equal(readFileSync(join(dir, 'tensors.bin')).length, 28);
  const back = readAll(dir, { expectSha256: sha256 });
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
  assert.throws(() => readAll(dir), refused(/tensors\.bin: has 36 bytes, the index describes 28/));
  const bytes = readFileSync(join(dir, 'tensors.bin')).subarray(0, 28);
  bytes[0] ^= 1;
  writeFileSync(join(dir, 'tensors.bin'), bytes);
  assert.ok(readAll(dir), 'without an expected hash, sizes are all that is checked');
  assert.throws(() => readAll(dir, { expectSha256: sha256 }), refused(/tensors\.bin: checksum mismatch/));
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
    assert.throws(() => readAll(dir), refused(pattern), label);
  }
  const { dir } = await written();
  writeFileSync(join(dir, 'index.json'), '{"format": 1, "tens');
  assert.throws(() => readAll(dir), refused(/index\.json: is unreadable/));
});

test('verification is one streaming pass through a bounded buffer; each tensor is then read alone, fresh each time', async () => {
  const dir = tempDir();
  const big = new Float32Array(3 << 20); // 12 MiB: larger than the 8 MiB hashing buffer
  for (let i = 0; i < big.length; i += 4099) big[i] = i;
  const out = await writeTensorFile(dir, [...ENTRIES, ['params/big', { dtype: 'float32', shape: [3, 1 << 20], data: big }]]);
  const reads: Array<{ size: number; position: number }> = [];
  const read: FileReader = (fd, into, offset, length, position) => {
    reads.push({ size: into.byteLength, position });
    return readSync(fd, into, offset, length, position);
  };
  const file = openTensorFile(dir, { expectSha256: out.tensors.sha256, read });
  assert.ok(reads.length >= 2, 'the 12 MiB file took more than one read');
  assert.ok(reads.every((r) => r.size <= 8 << 20), `no buffer over 8 MiB while verifying: ${reads.map((r) => r.size)}`);
  assert.deepEqual(reads.map((r) => r.position), reads.map((_r, i) => i * (8 << 20)), 'front to back');
  reads.length = 0;
  const a = file.readTensor('params/big');
  assert.deepEqual(reads, [{ size: 12 << 20, position: out.index.tensors['params/big'].offset }], 'one positioned read of that tensor only');
  assert.deepEqual(new Uint8Array(a.data.buffer), new Uint8Array(big.buffer));
  const b = file.readTensor('params/big');
  assert.notEqual(a.data.buffer, b.data.buffer, 'nothing is cached: each read is a fresh array the caller owns');
  assert.deepEqual(file.readTensor('optim/odd/step'), { dtype: 'int32', shape: [1, 1], data: new Int32Array([-5]) });
  assert.throws(() => file.readTensor('params/nope'), /no tensor params\/nope in the index/);
});

test('short reads are continued; a read that ends early, or an I/O error, names the file and the error', async () => {
  const { dir, sha256 } = await written();
  const trickle: FileReader = (fd, into, offset, length, position) => readSync(fd, into, offset, Math.min(length, 3), position);
  assert.deepEqual(readAll(dir, { expectSha256: sha256, read: trickle }), readAll(dir, { expectSha256: sha256 }));
  const eof: FileReader = () => 0;
  assert.throws(() => openTensorFile(dir, { expectSha256: sha256, read: eof }), refused(/tensors\.bin: ended early/));
  const eio: FileReader = () => {
    throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO', errno: -5, syscall: 'read' });
  };
  assert.throws(() => openTensorFile(dir, { expectSha256: sha256, read: eio }), refused(/tensors\.bin: is unreadable: EIO: i\/o error, read/));
  // Without a hash nothing is read up front: the error comes with the tensor.
  const lazy = openTensorFile(dir, { read: eio });
  assert.throws(() => lazy.readTensor('params/odd'), refused(/tensors\.bin: is unreadable: EIO/));
  // A bug in the reader is not an I/O error: it passes through as it is.
  assert.throws(() => readAll(dir, { read: () => { throw new TypeError('boom'); } }), (err: unknown) => err instanceof TypeError);
});

test('a tensor file replaced after it was verified is refused, not read unverified', async () => {
  const { dir, sha256 } = await written();
  const file = openTensorFile(dir, { expectSha256: sha256 });
  const bytes = readFileSync(join(dir, 'tensors.bin'));
  bytes[0] ^= 1;
  writeFileSync(join(dir, 'tensors.bin.new'), bytes);
  renameSync(join(dir, 'tensors.bin.new'), join(dir, 'tensors.bin'));
  assert.throws(
    () => file.readTensor('params/odd'),
    (err: unknown) => err instanceof SoapTrainError && err.exitCode === 1 && /tensors\.bin: changed since it was opened and verified/.test(err.oneLine()),
  );
});
