/**
 * Job scripts for running a sweep elsewhere: an sbatch array script (one task per run) and a
 * plain bash script. Both carry the runs as a `case` on the task index, with absolute paths, so
 * they run from any working directory; both run `soap-train train … --run-dir DIR --resume`, the
 * one line that starts a run and continues it after a requeue or a rerun.
 *
 * Slurm and preemption: `--signal=B:TERM@<grace>` sends SIGTERM to the batch shell only, so the
 * script runs the trainer in the background, `wait`s, and forwards the TERM (once: a second
 * signal makes the trainer quit without its checkpoint). The trainer checkpoints and exits 130;
 * on that, or on exit 75 (`--time-limit` reached), the task requeues itself
 * (`scontrol requeue <array job>_<task>`) and resumes when it runs again.
 *
 * `SOAP_TRAIN` (the trainer executable) and `SCONTROL` may be set in the environment; tests use
 * them to substitute stubs.
 */
import type { PlannedRun, SweepPlan } from './plan.js';
import { join } from 'node:path';

/** Quotes a word for bash: as is when it is plainly safe, else in single quotes. */
export function bashQuote(word: string): string {
  return /^[A-Za-z0-9_\/.,:=+@%-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export interface EmitOptions {
  /** The sweep directory (absolute): run folders and logs/ are inside it. */
  dir: string;
  /** Default trainer executable baked into the script (the checkout's bin/soap-train). */
  soapTrain: string;
  /** Passed to each run as `--time-limit`. */
  timeLimit?: string;
}

/** `case "$task" in 0) run=…; sets=(…) ;; … esac`: the index → run mapping both scripts share. */
function runCase(runs: readonly PlannedRun[], indent: string): string[] {
  return [
    `${indent}case "$task" in`,
    ...runs.map((run, i) => `${indent}  ${i}) run=${bashQuote(run.name)}; sets=(${run.set.flatMap((s) => ['--set', bashQuote(s)]).join(' ')}) ;;`),
    `${indent}  *) echo "soap-train sweep: no run for task index $task (0-${runs.length - 1})" >&2; exit 2 ;;`,
    `${indent}esac`,
  ];
}

function header(plan: SweepPlan, opts: EmitOptions): string[] {
  return [
    `SOAP_TRAIN=\${SOAP_TRAIN:-${bashQuote(opts.soapTrain)}}`,
    `CONFIG=${bashQuote(plan.base)}`,
    `SWEEP_DIR=${bashQuote(opts.dir)}`,
    `EXTRA=(${opts.timeLimit !== undefined ? `--time-limit ${bashQuote(opts.timeLimit)}` : ''})`,
  ];
}

export interface SlurmOptions extends EmitOptions {
  /** Seconds before the time limit at which Slurm sends SIGTERM (default 120). */
  graceSeconds?: number;
  /** Extra `#SBATCH` options: `time=04:00:00` or `--partition=gpu` become `#SBATCH --time=…`. */
  sbatch?: string[];
}

/** Normalizes a user's `--sbatch` value to the text after `#SBATCH `. */
export function sbatchLine(option: string): string {
  const bare = option.trim().replace(/^#SBATCH\s+/, '');
  return bare.startsWith('-') ? bare : `--${bare}`;
}

export function slurmScript(plan: SweepPlan, opts: SlurmOptions): string {
  const n = plan.runs.length;
  const grace = opts.graceSeconds ?? 120;
  const logs = join(opts.dir, 'logs');
  return [
    '#!/bin/bash',
    `# soap-train sweep ${plan.name}: ${n} run${n === 1 ? '' : 's'} of ${plan.base} as one Slurm job array, one task per run.`,
    `#   submit:  sbatch ${bashQuote(join(opts.dir, 'sweep.slurm'))}`,
    `#   then:    soap-train sweep ${bashQuote(opts.dir)} --collect   (sweep.json, sweep.md and the compare table, once the tasks are done)`,
    '# Each task trains with --resume: its first start creates the run, a requeued start continues it',
    `# from its newest checkpoint. Slurm sends SIGTERM ${grace} s before the time limit; the script forwards`,
    '# it to soap-train, which checkpoints and exits 130, and the task requeues itself (also on exit 75,',
    "# soap-train's --time-limit). Generated from sweep.yaml in the sweep directory: re-emit rather than edit.",
    `#SBATCH --job-name=${plan.name}`,
    `#SBATCH --array=0-${n - 1}`,
    `#SBATCH --output=${logs}/%x-%A_%a.log`,
    '#SBATCH --open-mode=append',
    `#SBATCH --signal=B:TERM@${grace}`,
    '#SBATCH --requeue',
    ...(opts.sbatch ?? []).map((o) => `#SBATCH ${sbatchLine(o)}`),
    'set -u',
    '',
    ...header(plan, opts),
    'SCONTROL=${SCONTROL:-scontrol}',
    'task=${SLURM_ARRAY_TASK_ID:?"submit this script with sbatch (SLURM_ARRAY_TASK_ID is not set)"}',
    '',
    ...runCase(plan.runs, ''),
    '',
    'echo "soap-train sweep: task $task: $run (start $(date -Is), restart ${SLURM_RESTART_COUNT:-0}, host $(hostname))"',
    '',
    '# Forward the first TERM to the trainer, once; it may arrive before the trainer is started.',
    'term=0',
    'forwarded=0',
    'interrupted=0',
    'child=',
    'forward_term() {',
    '  term=1',
    '  interrupted=1',
    '  if [ -n "$child" ] && [ "$forwarded" = 0 ]; then',
    '    forwarded=1',
    '    kill -TERM "$child" 2>/dev/null',
    '  fi',
    '}',
    'trap forward_term TERM',
    '"$SOAP_TRAIN" train --config "$CONFIG" ${sets[@]+"${sets[@]}"} --run-dir "$SWEEP_DIR/$run" --resume ${EXTRA[@]+"${EXTRA[@]}"} &',
    'child=$!',
    'if [ "$term" = 1 ]; then forward_term; fi',
    '# A trapped TERM makes `wait` return at once (status > 128) while the trainer is still',
    '# checkpointing: wait again until it has exited.',
    'while :; do',
    '  interrupted=0',
    '  wait "$child"',
    '  status=$?',
    '  if [ "$interrupted" = 1 ] && [ "$status" -gt 128 ]; then continue; fi',
    '  break',
    'done',
    'trap - TERM',
    '',
    'if [ "$status" = 75 ] || { [ "$term" = 1 ] && [ "$status" != 0 ]; }; then',
    '  job=${SLURM_ARRAY_JOB_ID:-}',
    '  if [ -z "$job" ]; then',
    '    echo "soap-train sweep: $run stopped (exit $status); not under Slurm, run this task again to resume" >&2',
    '    exit "$status"',
    '  fi',
    '  echo "soap-train sweep: $run stopped (exit $status); requeueing ${job}_${task} to resume it"',
    '  "$SCONTROL" requeue "${job}_${task}" || exit "$status"',
    '  exit 0',
    'fi',
    'echo "soap-train sweep: $run exited $status ($(date -Is))"',
    'exit "$status"',
    '',
  ].join('\n');
}

/**
 * A plain bash script: runs one after another (`JOBS=4 bash sweep.sh` for four at once, with
 * xargs -P), skipping completed runs; logs in logs/<run>.log; then writes sweep.json/sweep.md.
 * Exits non-zero if any run failed. Ctrl-C reaches every trainer, which checkpoints and exits 130;
 * running the script again resumes.
 */
export function shellScript(plan: SweepPlan, opts: EmitOptions): string {
  const n = plan.runs.length;
  return [
    '#!/bin/bash',
    `# soap-train sweep ${plan.name}: ${n} run${n === 1 ? '' : 's'} of ${plan.base}, one after another.`,
    `#   bash ${bashQuote(join(opts.dir, 'sweep.sh'))}            (JOBS=4 in the environment: four runs at once)`,
    '# Completed runs are skipped and interrupted ones resumed, so running it again continues the sweep.',
    "# Generated from sweep.yaml in the sweep directory: re-emit rather than edit.",
    'set -u',
    '',
    ...header(plan, opts),
    `TASKS=${n}`,
    '',
    'run_task() {',
    '  local task=$1 run sets',
    ...runCase(plan.runs, '  '),
    '  local dir="$SWEEP_DIR/$run" log="$SWEEP_DIR/logs/$run.log"',
    `  if grep -qs '"status": *"completed"' "$dir/summary.json"; then echo "skip $run (completed)"; return 0; fi`,
    '  echo "start $run (log $log)"',
    '  echo "=== $(date -Is) task $task" >>"$log"',
    '  "$SOAP_TRAIN" train --config "$CONFIG" ${sets[@]+"${sets[@]}"} --run-dir "$dir" --resume ${EXTRA[@]+"${EXTRA[@]}"} >>"$log" 2>&1',
    '  local status=$?',
    '  echo "end $run: exit $status"',
    '  return "$status"',
    '}',
    '',
    'if [ "${1:-}" = --task ]; then run_task "$2"; exit; fi',
    '',
    'mkdir -p "$SWEEP_DIR/logs"',
    '# xargs exits 123 when a task failed; it goes on with the others.',
    'seq 0 $((TASKS - 1)) | xargs -P "${JOBS:-1}" -n 1 bash "${BASH_SOURCE[0]}" --task',
    'status=$?',
    '"$SOAP_TRAIN" sweep "$SWEEP_DIR" --collect',
    'exit "$status"',
    '',
  ].join('\n');
}
