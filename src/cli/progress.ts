/**
 * Progress for people: the run's events drawn as a cli-progress bar on a TTY, else as one plain
 * line per logged step. Metrics (metrics.jsonl) and events (log.jsonl) are written by the run
 * itself; this is display only.
 */
import cliProgress from 'cli-progress';
import type { RunEvent, RunEventHandler } from '../train/events.js';

type StepEvent = Extract<RunEvent, { type: 'step' }>;

interface Display {
  update(u: StepEvent): void;
  /** A line that must not be overwritten by the bar (an eval result, a warning). */
  note(line: string): void;
  stop(): void;
}

function createDisplay(totalSteps: number, startStep: number, stream: NodeJS.WriteStream): Display {
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: 'step {value}/{total} |{bar}| loss {loss} | {tps} tok/s | lr {lr} | ETA {eta_formatted}',
        hideCursor: true,
        etaBuffer: 50,
        stream,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(totalSteps, startStep, { loss: '-', tps: '-', lr: '-' });
    return {
      update: (u) => bar.update(u.step, { loss: u.loss.toFixed(4), tps: Math.round(u.tokensPerS), lr: u.lr.toExponential(2) }),
      // Clear the bar's line, print the note; the bar redraws itself on its next update.
      note: (line) => stream.write(`\r\x1b[2K${line}\n`),
      stop: () => bar.stop(),
    };
  }
  return {
    update: (u) =>
      stream.write(
        `step ${u.step}/${u.steps} loss ${u.loss.toFixed(4)} lr ${u.lr.toExponential(2)} ` +
          `|g| ${u.gradNorm.toFixed(3)} ${Math.round(u.tokensPerS)} tok/s ${u.wallS.toFixed(1)}s\n`,
      ),
    note: (line) => stream.write(`${line}\n`),
    stop: () => {},
  };
}

/** A run-event handler that shows the run on `stream` (stderr by default). */
export function consoleProgress(stream: NodeJS.WriteStream = process.stderr): RunEventHandler {
  let display: Display | null = null;
  const note = (line: string) => (display ? display.note(line) : stream.write(`${line}\n`));
  return (e) => {
    switch (e.type) {
      case 'start':
        stream.write(`soap-train: ${e.resumed ? `resuming ${e.runDir} from step ${e.step}` : `run ${e.runDir}`} (backend ${e.backend}: ${e.backendReason})\n`);
        display = createDisplay(e.steps, e.step, stream);
        break;
      case 'step':
        display?.update(e);
        break;
      case 'eval':
        note(`eval step ${e.step}: val loss ${e.valLoss.toFixed(4)} (${e.seconds.toFixed(1)}s)`);
        break;
      case 'warning':
        note(`soap-train: warning: ${e.message}`);
        break;
      case 'refresh':
        note(`step ${e.step}: optimizer linear algebra ${e.done}/${e.total} (${e.elapsedS.toFixed(0)}s, ETA ${e.etaS.toFixed(0)}s)`);
        break;
      case 'checkpoint':
        break;
      case 'end':
        display?.stop();
        display = null;
        break;
    }
  };
}
