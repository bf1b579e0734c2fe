/**
 * Serializes the few TensorBoard `Event` protobufs a training run writes: the file-version
 * header, a session START, and a summary of scalars.
 *
 * Field numbers, from tensorboard/compat/proto/event.proto and summary.proto (copies of
 * TensorFlow's tensorflow/core/util/event.proto and tensorflow/core/framework/summary.proto):
 *
 *   Event      { double wall_time = 1; int64 step = 2;
 *                oneof what { string file_version = 3; bytes graph_def = 4; Summary summary = 5;
 *                             LogMessage log_message = 6 [deprecated]; SessionLog session_log = 7; … } }
 *   Summary    { repeated Value value = 1; }
 *   Value      { string tag = 1; oneof value { float simple_value = 2; … } }
 *   SessionLog { SessionStatus status = 1; string checkpoint_path = 2; string msg = 3; }
 *              SessionStatus { STATUS_UNSPECIFIED = 0; START = 1; STOP = 2; CHECKPOINT = 3; }
 *
 * (session_log is 7, not 6: 6 is the deprecated log_message.) Scalars use the legacy
 * `simple_value`, which TensorBoard converts to its scalar plugin on load (data_compat.py,
 * `_migrate_scalar_value`). Encoded with protobufjs's low-level `Writer`: no .proto file to
 * ship, and proto3 defaults (step 0) are left out as a protobuf serializer would.
 */
import { Writer } from 'protobufjs/minimal.js';

/** Written in the first event of every file; TensorBoard parses the number after the colon. */
export const FILE_VERSION = 'brain.Event:2';

export const SESSION_START = 1;

/** Wire types: 1 = 64-bit, 2 = length-delimited, 0 = varint, 5 = 32-bit. */
const key = (field: number, wireType: number): number => (field << 3) | wireType;
const EVENT_WALL_TIME = key(1, 1);
const EVENT_STEP = key(2, 0);
const EVENT_FILE_VERSION = key(3, 2);
const EVENT_SUMMARY = key(5, 2);
const EVENT_SESSION_LOG = key(7, 2);
const SUMMARY_VALUE = key(1, 2);
const VALUE_TAG = key(1, 2);
const VALUE_SIMPLE_VALUE = key(2, 5);
const SESSION_LOG_STATUS = key(1, 0);

export interface Scalar {
  tag: string;
  value: number;
}

/** Starts an Event with its wall time (seconds since the epoch) and step. */
function eventHead(wallTime: number, step: number): Writer {
  const writer = Writer.create().uint32(EVENT_WALL_TIME).double(wallTime);
  if (step !== 0) writer.uint32(EVENT_STEP).int64(step);
  return writer;
}

export function fileVersionEvent(wallTime: number): Uint8Array {
  return eventHead(wallTime, 0).uint32(EVENT_FILE_VERSION).string(FILE_VERSION).finish();
}

/** SessionLog START at `step`: the marker TensorBoard purges restarted data by (see run-board.ts). */
export function sessionStartEvent(wallTime: number, step: number): Uint8Array {
  return eventHead(wallTime, step).uint32(EVENT_SESSION_LOG).fork().uint32(SESSION_LOG_STATUS).uint32(SESSION_START).ldelim().finish();
}

/** One Summary of float32 scalars at `step` (values are rounded to float32 by the encoding). */
export function scalarsEvent(wallTime: number, step: number, scalars: readonly Scalar[]): Uint8Array {
  const writer = eventHead(wallTime, step).uint32(EVENT_SUMMARY).fork();
  for (const { tag, value } of scalars) {
    writer.uint32(SUMMARY_VALUE).fork().uint32(VALUE_TAG).string(tag).uint32(VALUE_SIMPLE_VALUE).float(value).ldelim();
  }
  return writer.ldelim().finish();
}
