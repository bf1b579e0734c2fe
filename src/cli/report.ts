/**
 * `soap-train report RUN… [--out DIR] [--screenshot]`: charts of one or more runs (loss against
 * steps, tokens and training time; learning rate; gradient norm; the step-time split) as SVG and
 * PNG, an overview PNG, and one self-contained interactive report.html. A RUN is a run directory
 * (finished, resumed or still training) or a folder of runs. The work is in src/report/.
 */
import { Command } from 'commander';
import { join, relative } from 'node:path';
import { badInput, SoapTrainError } from '../errors.js';
import { findChromium, screenshot } from '../report/browser.js';

interface ReportCliOptions {
  out?: string;
  screenshot?: boolean;
}

const SCREENSHOT_FILE = 'screenshot.png';

/** Where a path is, said briefly: relative to the working directory when inside it. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : path;
}

export function reportCommand(): Command {
  return new Command('report')
    .description(
      'charts of runs (loss vs steps, tokens and training time; learning rate; gradient norm; step-time split) as SVG and PNG, and one self-contained interactive report.html',
    )
    .argument('<runs...>', 'run directories (finished, resumed or in progress), or folders of runs')
    .option('-o, --out <dir>', 'output directory (default: <run>/report for one run, reports/<date>-<time> for several)')
    .option('--screenshot', `also save ${SCREENSHOT_FILE}: the top of report.html (charts and run table, 1400×1600) as drawn by headless Chromium (needs chromium or Chrome; $CHROMIUM names the binary)`)
    .action(async (runs: string[], opts: ReportCliOptions) => {
      // Looked up before any work, so a missing browser costs no charts.
      const chromium = opts.screenshot ? findChromium() : null;
      if (opts.screenshot && !chromium) {
        throw badInput('--screenshot needs Chromium or Chrome, and none was found', { fix: 'install chromium, or set CHROMIUM=/path/to/chrome' });
      }
      // Loaded here, not at the top: Vega and Vega-Lite add ~0.1 s to every other command's start.
      const { writeReport } = await import('../report/write-report.js');
      const result = await writeReport(runs, { outDir: opts.out });
      const charts = result.files.filter((f) => f.endsWith('.svg') && f !== 'overview.svg').map((f) => f.replace(/\.svg$/, ''));
      const item = (name: string, what: string) => `  ${name.padEnd(15)} ${what}`;
      const lines = [
        `soap-train: report on ${result.runs.length} run${result.runs.length === 1 ? '' : 's'} → ${shown(result.outDir)}/`,
        item('report.html', 'interactive page (self-contained: opens offline)'),
        item('overview.png', 'loss vs steps and vs training time, step-time split'),
        item('charts', `${charts.join(', ')} (.svg and .png each)`),
        item('report.json', "the table's numbers and config differences"),
      ];
      if (chromium) {
        const png = join(result.outDir, SCREENSHOT_FILE);
        const run = screenshot(chromium, join(result.outDir, 'report.html'), png, { width: 1400, height: 1600 });
        if (run.status !== 0) {
          throw new SoapTrainError(`headless Chromium failed (exit ${run.status}) taking the screenshot: ${run.stderr.trim().split('\n').slice(-3).join(' | ')}`, { exitCode: 1 });
        }
        lines.push(item(SCREENSHOT_FILE, `the page as drawn by ${chromium}`));
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
