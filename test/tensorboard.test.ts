/**
 * TensorBoard event files, checked by reading them back with a reader written here, independent
 * of the writer's libraries: the record framing with both CRCs recomputed by a bitwise CRC32C
 * (polynomial 0x82F63B78), the Event/Summary/SessionLog protobufs decoded by hand, and
 * TensorBoard's restart rule (a later SessionLog START drops every point with step ≥ its step,
 * plugin_event_accumulator.py `_Purge`) applied across a run's files in name order.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { crc32c } from '@aws-crypto/crc32c';
import { loadConfig, loadRunConfig, parseOverride, runExperiment, type RunEvent } from '../src/index.js';
import { readJsonl } from '../src/run/jsonl.js';
import { fileVersionEvent, scalarsEvent } from '../src/tensorboard/event.js';
import { EventsFileWriter } from '../src/tensorboard/events-file.js';
import { encodeRecord, maskCrc, maskedCrc32c } from '../src/tensorboard/record.js';
import { metricsRowScalars, RunBoard, type MetricsRowFields } from '../src/tensorboard/run-board.js';
import { tinyExperiment } from './helpers/tiny-run.js';
import { tempDirs } from './helpers/tmp.js';

const tempDir = tempDirs('soap-tb-');

// ---- an independent reader -------------------------------------------------------------------

/** CRC32C bit by bit: reflected, polynomial 0x82F63B78, initial and final XOR ~0. */
function bitwiseCrc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** TensorFlow's mask: rotate right by 15, add 0xa282ead8, modulo 2^32 (written out with BigInt). */
function bigIntMask(crc: number): number {
  const c = BigInt(crc);
  const rotated = ((c >> 15n) | (c << 17n)) & 0xffffffffn;
  return Number((rotated + 0xa282ead8n) & 0xffffffffn);
}

/** The data of every record in `bytes`, both CRCs checked; a torn tail is an error here. */
function readRecords(bytes: Buffer): Buffer[] {
  const records: Buffer[] = [];
  let at = 0;
  while (at < bytes.length) {
    assert.ok(at + 12 <= bytes.length, `record header at ${at} is cut off`);
    const length = Number(bytes.readBigUInt64LE(at));
    assert.equal(bytes.readUInt32LE(at + 8), bigIntMask(bitwiseCrc32c(bytes.subarray(at, at + 8))), `length CRC at ${at}`);
    const data = bytes.subarray(at + 12, at + 12 + length);
    assert.equal(data.length, length, `record data at ${at} is cut off`);
    assert.equal(bytes.readUInt32LE(at + 12 + length), bigIntMask(bitwiseCrc32c(data)), `data CRC at ${at}`);
    records.push(data);
    at += 12 + length + 4;
  }
  return records;
}

interface Field {
  field: number;
  wire: number;
  /** varint (as a number: steps stay below 2^53), or the raw bytes of a fixed or length-delimited field */
  varint?: number;
  bytes?: Buffer;
}

function readVarint(buf: Buffer, at: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (;;) {
    const byte = buf[at++];
    value += (byte & 0x7f) * scale;
    scale *= 128;
    if (byte < 0x80) return [value, at];
  }
}

/** The top-level fields of one protobuf message, by hand. */
function readFields(buf: Buffer): Field[] {
  const fields: Field[] = [];
  let at = 0;
  while (at < buf.length) {
    const [key, next] = readVarint(buf, at);
    at = next;
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === 0) {
      const [varint, after] = readVarint(buf, at);
      fields.push({ field, wire, varint });
      at = after;
    } else if (wire === 1 || wire === 5) {
      const size = wire === 1 ? 8 : 4;
      fields.push({ field, wire, bytes: buf.subarray(at, at + size) });
      at += size;
    } else if (wire === 2) {
      const [length, start] = readVarint(buf, at);
      fields.push({ field, wire, bytes: buf.subarray(start, start + length) });
      at = start + length;
    } else {
      assert.fail(`unexpected wire type ${wire}`);
    }
  }
  return fields;
}

interface ParsedEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  sessionStatus?: number;
  scalars?: Array<{ tag: string; value: number }>;
}

/** Event: wall_time 1 (double), step 2, file_version 3, summary 5, session_log 7. */
function parseEvent(data: Buffer): ParsedEvent {
  const event: ParsedEvent = { wallTime: 0, step: 0 };
  for (const f of readFields(data)) {
    if (f.field === 1 && f.wire === 1) event.wallTime = f.bytes!.readDoubleLE(0);
    else if (f.field === 2 && f.wire === 0) event.step = f.varint!;
    else if (f.field === 3 && f.wire === 2) event.fileVersion = f.bytes!.toString('utf8');
    else if (f.field === 5 && f.wire === 2) {
      // Summary { repeated Value value = 1 }, Value { string tag = 1; float simple_value = 2 }
      event.scalars = readFields(f.bytes!).map((v) => {
        assert.equal(v.field, 1);
        const parts = readFields(v.bytes!);
        const tag = parts.find((p) => p.field === 1 && p.wire === 2);
        const value = parts.find((p) => p.field === 2 && p.wire === 5);
        assert.ok(tag && value, 'a Value has a tag and a simple_value');
        return { tag: tag.bytes!.toString('utf8'), value: value.bytes!.readFloatLE(0) };
      });
    } else if (f.field === 7 && f.wire === 2) {
      // SessionLog { status = 1 }
      event.sessionStatus = readFields(f.bytes!).find((p) => p.field === 1)?.varint ?? 0;
    } else assert.fail(`unexpected Event field ${f.field} (wire ${f.wire})`);
  }
  return event;
}

const readEventsFile = (path: string): ParsedEvent[] => readRecords(readFileSync(path)).map(parseEvent);

const eventsFiles = (dir: string): string[] =>
  readdirSync(dir)
    .filter((name) => name.startsWith('events.out.tfevents.'))
    .sort()
    .map((name) => join(dir, name));

type Series = Map<string, Array<{ step: number; value: number }>>;

/**
 * What TensorBoard shows for a run directory: its files in name order through one accumulator;
 * after the first SessionLog START, each START discards every point with step ≥ its step.
 */
function tensorBoardView(dir: string): Series {
  const series: Series = new Map();
  let seenStart = false;
  for (const file of eventsFiles(dir)) {
    for (const event of readEventsFile(file)) {
      if (event.sessionStatus === 1) {
        if (seenStart) for (const [tag, points] of series) series.set(tag, points.filter((p) => p.step < event.step));
        seenStart = true;
      }
      for (const { tag, value } of event.scalars ?? []) {
        if (!series.has(tag)) series.set(tag, []);
        series.get(tag)!.push({ step: event.step, value });
      }
    }
  }
  return series;
}

// ---- CRC and framing -------------------------------------------------------------------------

test('CRC32C: the standard check value, the library against the bitwise reference, and the mask', () => {
  const check = new TextEncoder().encode('123456789');
  assert.equal(bitwiseCrc32c(check), 0xe3069283);
  assert.equal(crc32c(check), 0xe3069283);
  const sample = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37 + 11) & 0xff));
  for (const length of [0, 1, 7, 8, 9, 64, 300]) {
    assert.equal(maskedCrc32c(sample.subarray(0, length)), bigIntMask(bitwiseCrc32c(sample.subarray(0, length))), `${length} bytes`);
  }
  // By hand: the CRC of no bytes is 0, rotating 0 gives 0, so the masked value is the constant.
  assert.equal(maskCrc(0), 0xa282ead8);
  // The length header of a 24-byte record, as in every TensorFlow events file: bytes a3 7f 4b 22.
  assert.equal(maskedCrc32c(Buffer.from([24, 0, 0, 0, 0, 0, 0, 0])), 0x224b7fa3);
  for (const crc of [1, 0x7fff, 0x8000, 0xdeadbeef, 0xffffffff]) assert.equal(maskCrc(crc), bigIntMask(crc));
});

test('records and events match golden bytes written by TensorFlow and tensorboard_logger', () => {
  // TensorFlow's gcs_file_loader_test.py: a complete "brain.Event:2" record.
  const tf = Buffer.from(`\x18\x00\x00\x00\x00\x00\x00\x00\xa3\x7fK"\t\x00\x00\x00'\xe6\xb3\xd5A\x1a\rbrain.Event:2jM\x0b\x15`, 'latin1');
  const tfWallTime = tf.readDoubleLE(13);
  assert.deepEqual(Buffer.from(encodeRecord(fileVersionEvent(tfWallTime))), tf);
  // tensorboard_logger's test_serialization: wall time 256.5, v/1 = 1.5 at step 1, v/22 = 16 at step 2.
  const golden = Buffer.from(
    `\x18\x00\x00\x00\x00\x00\x00\x00\xa3\x7fK"\t\x00\x00\x00\x00\x00\x08p@\x1a\rbrain.Event:2\xbc\x98!+` +
      `\x19\x00\x00\x00\x00\x00\x00\x00\x8b\xf1\x08(\t\x00\x00\x00\x00\x00\x08p@\x10\x01*\x0c\n\n\n\x03v/1\x15\x00\x00\xc0?,\xec\xc0\x87` +
      `\x1a\x00\x00\x00\x00\x00\x00\x00\x12\x9b\xd8-\t\x00\x00\x00\x00\x00\x08p@\x10\x02*\r\n\x0b\n\x04v/22\x15\x00\x00\x80A\x8f\xa3\xb6\x88`,
    'latin1',
  );
  const ours = Buffer.concat(
    [fileVersionEvent(256.5), scalarsEvent(256.5, 1, [{ tag: 'v/1', value: 1.5 }]), scalarsEvent(256.5, 2, [{ tag: 'v/22', value: 16 }])].map(encodeRecord),
  );
  assert.deepEqual(ours, golden);
});

// ---- the writer ------------------------------------------------------------------------------

test('RunBoard writes file_version, START and scalars that read back exactly (float32)', () => {
  const dir = tempDir();
  let now = 1_700_000_123_456;
  const warnings: string[] = [];
  const board = new RunBoard(dir, { firstStep: 1, warn: (m) => warnings.push(m), clock: () => now });
  const path = board.path!;
  assert.match(path, new RegExp(`/events\\.out\\.tfevents\\.1700000123\\.${hostname().replace(/\W/g, '\\$&')}\\.${process.pid}\\.\\d+$`));

  const row: MetricsRowFields = {
    step: 2 ** 40 + 3, // an int64 step past 32 bits
    loss: 0.1,
    loss_with_z: 1 / 3,
    lr: 3e-4,
    grad_norm: Number.NaN, // a skipped step's norm
    tokens_per_s: 123456.7,
    interval: { steps: 4, data_ms: 10, fwd_bwd_ms: 401.2, optim_ms: 33.33, refresh_ms: 7 },
  };
  now += 1500;
  board.metricsRow(row);
  now += 250;
  board.evaluation(7, 2.718281828459045);
  board.close();
  board.close();
  board.metricsRow(row); // after close: ignored

  const events = readEventsFile(path);
  assert.deepEqual(events, [
    { wallTime: 1_700_000_123.456, step: 0, fileVersion: 'brain.Event:2' },
    { wallTime: 1_700_000_123.456, step: 1, sessionStatus: 1 },
    {
      wallTime: 1_700_000_124.956,
      step: 2 ** 40 + 3,
      scalars: [
        { tag: 'loss/train', value: Math.fround(0.1) },
        { tag: 'loss/train_with_z', value: Math.fround(1 / 3) },
        { tag: 'optim/lr', value: Math.fround(3e-4) },
        { tag: 'optim/grad_norm', value: Number.NaN },
        { tag: 'perf/tokens_per_s', value: Math.fround(123456.7) },
        { tag: 'time/data_ms', value: 2.5 },
        { tag: 'time/fwd_bwd_ms', value: Math.fround(401.2 / 4) },
        { tag: 'time/optim_ms', value: Math.fround(33.33 / 4) },
        { tag: 'time/refresh_ms', value: 1.75 },
      ],
    },
    { wallTime: 1_700_000_125.206, step: 7, scalars: [{ tag: 'loss/val', value: Math.fround(Math.E) }] },
  ]);
  assert.deepEqual(warnings, []);
  assert.deepEqual(
    metricsRowScalars({ ...row, interval: { steps: 0, data_ms: 0, fwd_bwd_ms: 0, optim_ms: 0, refresh_ms: 0 } }).slice(5).map((s) => s.value),
    [0, 0, 0, 0],
    'a row with an empty interval averages to 0, not NaN',
  );
});

test('EventsFileWriter buffers: writes when the buffer is full, when flushEveryMs has passed, on flush', () => {
  const dir = tempDir();
  let now = 1_000_000;
  const writer = new EventsFileWriter(dir, [fileVersionEvent(1000)], { warn: assert.fail, clock: () => now, maxPendingBytes: 200, flushEveryMs: 10_000 });
  const size = () => statSync(writer.path!).size;
  const event = scalarsEvent(1000, 1, [{ tag: 'loss/train', value: 1 }]);
  const recordSize = encodeRecord(event).length; // 16 bytes of framing + the event
  let written = size();
  assert.equal(written, encodeRecord(fileVersionEvent(1000)).length, 'the header is written at once');

  const appendsToFill = Math.ceil(200 / recordSize);
  for (let i = 1; i < appendsToFill; i++) {
    writer.append(event);
    assert.equal(size(), written, `append ${i}: still buffered`);
  }
  writer.append(event);
  written += appendsToFill * recordSize;
  assert.equal(size(), written, 'the buffer passing maxPendingBytes is written');

  now += 9_999;
  writer.append(event);
  assert.equal(size(), written, 'not yet flushEveryMs since the last write');
  now += 1;
  writer.append(event);
  written += 2 * recordSize;
  assert.equal(size(), written, 'flushEveryMs since the last write: written');

  writer.append(event);
  writer.flush();
  written += recordSize;
  assert.equal(size(), written);
  writer.close();
  assert.equal(readRecords(readFileSync(writer.path!)).length, 1 + appendsToFill + 3);

  // Two writers in the same directory, the same second and process: two files. Unicode tags are
  // length-prefixed in bytes; values beyond float32 become Infinity, the smallest subnormal survives.
  const other = new EventsFileWriter(dir, [], { warn: assert.fail, clock: () => now });
  other.append(scalarsEvent(2.5, 8, [{ tag: 'ünï/κ', value: 1e40 }, { tag: 'tiny', value: 1e-45 }]));
  other.close();
  assert.deepEqual(readEventsFile(other.path!), [{ wallTime: 2.5, step: 8, scalars: [{ tag: 'ünï/κ', value: Infinity }, { tag: 'tiny', value: Math.fround(1e-45) }] }]);
  assert.notEqual(other.path, writer.path);
  assert.equal(eventsFiles(dir).length, 2);
});

test('an I/O error warns once and turns the writer off; nothing throws', () => {
  const missing = join(tempDir(), 'no', 'such', 'dir');
  const warnings: string[] = [];
  const board = new RunBoard(missing, { firstStep: 1, warn: (m) => warnings.push(m) });
  assert.equal(board.path, null);
  board.evaluation(1, 1);
  board.flush();
  board.close();
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /ENOENT.*no more TensorBoard output/);
  assert.equal(existsSync(missing), false, 'no directory is created for it');

  // The run directory disappears mid-run: the next write fails, warns once, and later ones are skipped.
  const dir = join(tempDir(), 'run');
  mkdirSync(dir);
  const later: string[] = [];
  const writer = new EventsFileWriter(dir, [fileVersionEvent(1)], { warn: (m) => later.push(m) });
  assert.ok(writer.ok);
  rmSync(dir, { recursive: true });
  writer.append(fileVersionEvent(2));
  writer.flush();
  assert.equal(writer.ok, false);
  for (let i = 0; i < 3; i++) writer.append(fileVersionEvent(3));
  writer.flush();
  writer.close();
  assert.equal(later.length, 1);
  assert.match(later[0], /ENOENT/);
});

// ---- a real run --------------------------------------------------------------------------------

test('a run and its resume: TensorBoard shows exactly metrics.jsonl and eval.jsonl (float32)', async () => {
  const startedS = Date.now() / 1000;
  const exp = tinyExperiment('checkpoint: {interval: 2, keep: 2}');
  const run = join(exp.dir, 'runs', 'tb');
  const config = loadConfig(exp.config, ['train.steps=8', 'train.log_interval=1', 'train.eval_interval=3'].map(parseOverride));

  // Stopped after step 5 (checkpointed at 2, 4 and 5); then step-5 is lost, as if the process had
  // died before saving it, so the resume goes back to step 4 and step 5's points in the first file are stale.
  const stop = new AbortController();
  const first = await runExperiment(config, {
    runDir: run,
    signal: stop.signal,
    onProgress: (e: RunEvent) => e.type === 'step' && e.step === 5 && stop.abort('test'),
  });
  assert.equal(first.steps, 5);
  const [firstFile] = eventsFiles(run);
  assert.equal(eventsFiles(run).length, 1);
  const firstEvents = readEventsFile(firstFile);
  assert.equal(firstEvents[0].fileVersion, 'brain.Event:2');
  assert.deepEqual([firstEvents[1].sessionStatus, firstEvents[1].step], [1, 1], 'a fresh run STARTs at step 1');
  assert.ok(
    firstEvents.some((e) => e.step === 5 && e.scalars?.some((s) => s.tag === 'loss/train')),
    'the first file holds a step-5 point (flushed at the interrupted run’s checkpoint)',
  );
  rmSync(join(run, 'checkpoints', 'step-5'), { recursive: true });

  const second = await runExperiment(loadRunConfig(run), { runDir: run, resume: true });
  assert.equal(second.resumed_from_step, 4);
  const files = eventsFiles(run);
  assert.equal(files.length, 2, 'the resume writes a new file');
  assert.equal(files[0], firstFile, 'the new file sorts after the first');
  const resumed = readEventsFile(files[1]);
  assert.equal(resumed[0].fileVersion, 'brain.Event:2');
  assert.deepEqual([resumed[1].sessionStatus, resumed[1].step], [1, 5], 'the resume STARTs at its first step, checkpoint 4 + 1');

  const view = tensorBoardView(run);
  const metrics = readJsonl<MetricsRowFields>(join(run, 'metrics.jsonl'));
  assert.deepEqual(
    metrics.map((r) => r.step),
    [1, 2, 3, 4, 5, 6, 7, 8],
  );
  for (const [i, tag] of ['loss/train', 'loss/train_with_z', 'optim/lr', 'optim/grad_norm', 'perf/tokens_per_s', 'time/data_ms', 'time/fwd_bwd_ms', 'time/optim_ms', 'time/refresh_ms'].entries()) {
    const expected = metrics.map((row) => ({ step: row.step, value: Math.fround(metricsRowScalars(row)[i].value) }));
    assert.deepEqual(view.get(tag), expected, tag);
  }
  // The training loss, spelled out against the row field itself.
  assert.deepEqual(
    view.get('loss/train')!.map((p) => p.value),
    metrics.map((r) => Math.fround(r.loss)),
  );
  const evals = readJsonl<{ step: number; val_loss: number }>(join(run, 'eval.jsonl'));
  assert.deepEqual(
    evals.map((r) => r.step),
    [3, 6, 8],
  );
  assert.deepEqual(
    view.get('loss/val'),
    evals.map((r) => ({ step: r.step, value: Math.fround(r.val_loss) })),
  );
  // Without the purge, step 5 would show twice: the START is what removes the stale point.
  const raw = files.flatMap(readEventsFile).filter((e) => e.scalars?.some((s) => s.tag === 'loss/train'));
  assert.equal(raw.filter((e) => e.step === 5).length, 2);
  const endedS = Date.now() / 1000;
  for (const e of [...firstEvents, ...resumed]) assert.ok(e.wallTime >= startedS && e.wallTime <= endedS, `wall time ${e.wallTime}: the real time of the write`);
});
