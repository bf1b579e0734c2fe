/**
 * Fault injection for the crash tests. Code that must survive a kill anywhere marks the places
 * between its durable effects with `crashPoint()`. With `SOAP_TRAIN_CRASH_AT=N` in the
 * environment the process SIGKILLs itself at the N-th point it passes (no cleanup, no exit
 * handlers: exactly a power cut or an OOM kill), so a test can enumerate every point of a run
 * deterministically instead of racing a timer. Unset, a crash point is one integer increment.
 *
 * A test learns how many points a whole run passes from `SOAP_TRAIN_CRASH_COUNT_FILE=PATH`: the
 * count is written there when the process exits. Nothing of this reaches a run directory.
 */
import { writeFileSync } from 'node:fs';

const target = Number(process.env.SOAP_TRAIN_CRASH_AT ?? 0);
const countFile = process.env.SOAP_TRAIN_CRASH_COUNT_FILE;
let passed = 0;

if (countFile) process.on('exit', () => writeFileSync(countFile, String(passed)));

export function crashPoint(): void {
  passed += 1;
  if (passed === target) process.kill(process.pid, 'SIGKILL');
}
