/**
 * `soap-train compare --baseline RUN RUN… [--json FILE] [--markdown FILE]`: the paper's metric.
 * Steps and training wall-clock each family of runs needs to reach the baseline's final
 * validation loss (src/compare/), printed as a table; optionally written as JSON and Markdown.
 */
import { Command } from 'commander';
import { formatCompareMarkdown, formatCompareTable, compareRuns } from '../compare/index.js';
import { badInput } from '../errors.js';
import { writeFileAtomic } from '../run/atomic.js';
import { readRun, readRuns } from '../run/read-run.js';

interface CompareOptions {
  baseline: string;
  json?: string;
  markdown?: string;
}

/** A missing folder or a read-only place for an output file is the user's to fix: one line, exit 2. */
function writeOutput(file: string, option: string, text: string): void {
  try {
    writeFileAtomic(file, text);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EROFS' || code === 'EISDIR' || code === 'ENOTDIR') {
      throw badInput(`cannot write ${option} file (${code})`, { file, fix: 'pass a path in an existing, writable folder' });
    }
    throw err;
  }
}

export function compareCommand(): Command {
  return new Command('compare')
    .description(
      "steps and wall-clock to reach the baseline's final validation loss, per family of runs (runs differing only in train.steps): a power-law fit for 3+ lengths, else the crossing of each run's curve",
    )
    .requiredOption('--baseline <run-dir>', "the run whose final validation loss is the target, and whose steps and wall-clock are 1×")
    .argument('<run-dirs...>', 'run directories to compare (finished, resumed or still running)')
    .option('--json <file>', 'also write the result as JSON')
    .option('--markdown <file>', 'also write the table as Markdown')
    .action((runDirs: string[], opts: CompareOptions) => {
      const baseline = readRun(opts.baseline);
      const result = compareRuns(baseline, readRuns(runDirs));
      if (opts.json) writeOutput(opts.json, '--json', `${JSON.stringify(result, null, 2)}\n`);
      if (opts.markdown) writeOutput(opts.markdown, '--markdown', formatCompareMarkdown(result));
      process.stdout.write(formatCompareTable(result));
    });
}
