/**
 * Fault injection for the crash tests. Code that must survive a kill anywhere marks the places
 * between its durable effects with `crashPoint()`. With `SOAP_TRAIN_CRASH_AT=N` in the
 * environment the process SIGKILLs itself at the N-th point it passes (no cleanup, no exit
 * handlers: exactly a power cut or an OOM kill), so a test can enumerate every point of a run
 * deterministically instead of racing a timer. Unset, a crash point is one integer increment.
 */
const target = Number(process.env.SOAP_TRAIN_CRASH_AT ?? 0);
let passed = 0;

export function crashPoint(): void {
  passed += 1;
  if (passed === target) process.kill(process.pid, 'SIGKILL');
}

/** How many crash points this process has passed (reported in summary.json for the tests). */
export function crashPointsPassed(): number {
  return passed;
}
