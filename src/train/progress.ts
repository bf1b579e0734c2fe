/**
 * Progress for people: a cli-progress bar on a TTY, else one plain line per log interval.
 * Metrics (metrics.jsonl) and events (log.jsonl) are written elsewhere; this is display only.
 */
import cliProgress from 'cli-progress';

export interface ProgressUpdate {
  step: number;
  loss: number;
  tokensPerS: number;
  lr: number;
  gradNorm: number;
  wallS: number;
}

export interface Progress {
  update(u: ProgressUpdate): void;
  /** A line that must not be overwritten by the bar (an eval result, a warning). */
  note(line: string): void;
  stop(): void;
}

export function createProgress(totalSteps: number, startStep: number, stream: NodeJS.WriteStream = process.stderr): Progress {
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
        `step ${u.step}/${totalSteps} loss ${u.loss.toFixed(4)} lr ${u.lr.toExponential(2)} ` +
          `|g| ${u.gradNorm.toFixed(3)} ${Math.round(u.tokensPerS)} tok/s ${u.wallS.toFixed(1)}s\n`,
      ),
    note: (line) => stream.write(`${line}\n`),
    stop: () => {},
  };
}
