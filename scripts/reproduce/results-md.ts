/**
 * reproduce/RESULTS.md from results.json (pure): every number on the page is a field of the
 * results, formatted by format.ts; nothing is typed by hand.
 */
import { formatCompareMarkdown } from '../../src/compare/index.js';
import type { BatchAnalysis } from './batch.js';
import type { FrequencyTable, ReproduceResults, StudySetup } from './analyze.js';
import type { Headline } from './headline.js';
import { DASH, fmtCount, fmtInt, fmtLoss, fmtLr, fmtRatio, fmtResidual, fmtSpread, formatSeconds, formatSteps, mdTable, optimizerName, ratioSpread } from './format.js';

const list = (xs: readonly (number | string)[]) => xs.join(', ');
/** "1 layer", "2 layers". */
const count = (n: number, word: string, plural = `${word}s`) => `${n} ${n === 1 ? word : plural}`;

function setupTable(s: StudySetup): string {
  const rows: [string, string][] = [
    ['model', `${count(s.model.n_layers, 'layer')}, d_model ${s.model.d_model}, ${count(s.model.n_heads, 'head')}, MLP ${s.model.mlp_hidden}, vocabulary ${s.model.vocab_size}: ${fmtCount(s.params)} parameters (${fmtCount(s.non_embedding_params)} outside the embeddings)`],
    ['batch', `${s.batch_size} sequences × ${s.seq_len} tokens = ${fmtInt(s.tokens_per_step)} tokens per step`],
    ['budget', `${s.steps} steps = ${fmtInt(s.tokens)} tokens${s.warmup_steps !== null ? `, ${count(s.warmup_steps, 'warmup step')}, cosine schedule` : ''}`],
    ['evaluation', `every ${count(s.eval_interval, 'step')} and at the end, ${count(s.eval_steps, 'batch', 'batches')} (the same windows each time)`],
    ['learning rates swept', list(s.lr_grid.map(fmtLr))],
    ['headline family (steps)', list(s.family_steps)],
    ['precondition frequencies', list(s.frequencies)],
    ['seeds', list(s.seeds)],
    ['backend', s.backends.length > 0 ? s.backends.join(', ') : DASH],
    ['runs at once', s.jobs === null ? DASH : String(s.jobs)],
    ['sweeps in', `\`${s.out_dir}/\``],
  ];
  if (s.budget_scale !== 1 || s.quick) rows.push(['budget scale', `${Number(s.budget_scale.toPrecision(4))}${s.quick ? ' (--quick: a smoke test, the numbers mean nothing)' : ''}`]);
  return mdTable(['', ''], rows);
}

function headlineSection(h: Headline, r: ReproduceResults): string[] {
  const best = r.lr?.best ?? {};
  const rows = [
    [
      'AdamW (baseline)',
      fmtLr(best.adamw?.lr),
      '1×',
      '1×',
      h.adamw.steps === null ? DASH : String(h.adamw.steps),
      fmtSpread(h.adamw.wall_s, formatSeconds),
      fmtSpread(h.adamw.final_val_loss, (v) => v.toFixed(4)),
      DASH,
    ],
    ...Object.entries(h.summary).map(([o, s]) => [
      optimizerName(o),
      fmtLr(best[o]?.lr),
      ratioSpread(s.step_ratio),
      ratioSpread(s.wall_ratio),
      fmtSpread(s.steps_to_target, formatSteps),
      DASH,
      fmtSpread(s.final_val_loss, (v) => v.toFixed(4)),
      `${fmtResidual(s.max_abs_residual)} (${s.methods.join(', ')})`,
    ]),
  ];
  const perSeed = h.seeds.map((c) => [
    String(c.seed),
    fmtLoss(c.baseline.target_loss),
    formatSeconds(c.baseline.wall_s),
    ...Object.keys(h.summary).flatMap((o) => [fmtRatio(c.optimizers[o]?.step_ratio), fmtRatio(c.optimizers[o]?.wall_ratio), fmtResidual(c.optimizers[o]?.fit?.max_abs_residual)]),
  ]);
  const out = [
    "## Headline: steps and wall-clock to AdamW's final validation loss",
    '',
    "Per seed, `compareRuns` (as `soap-train compare`) takes that seed's AdamW run as the baseline and fits L(n) = E + A·n^−α through each family's final validation losses; the ratios are steps (and training seconds) to AdamW's final loss over AdamW's own. Below 1× is fewer. Mean over the seeds, in brackets the range, the sample standard deviation and the number of seeds.",
    '',
    mdTable(['optimizer', 'lr', 'steps to target vs AdamW', 'wall-clock to target vs AdamW', 'steps to target', 'training clock', 'final val loss (full budget)', 'fit max |residual| (method)'], rows),
    '',
    mdTable(['seed', "AdamW's final val loss (target)", "AdamW's training clock", ...Object.keys(h.summary).flatMap((o) => [`${optimizerName(o)} steps`, `${optimizerName(o)} wall-clock`, `${optimizerName(o)} fit residual`])], perSeed),
  ];
  for (const c of h.seeds) out.push('', `### Seed ${c.seed}: the compare table`, '', formatCompareMarkdown(c.compare).trimEnd());
  return out;
}

function frequencySection(f: FrequencyTable): string[] {
  const at10 = (o: string) => f.rows.find((r) => r.optimizer === o && r.frequency === 10)?.final_val_loss ?? null;
  const rows = f.rows.map((r) => {
    const ref = at10(r.optimizer);
    const delta = r.final_val_loss !== null && ref !== null && r.frequency !== 10 ? `${r.final_val_loss - ref >= 0 ? '+' : '−'}${Math.abs(r.final_val_loss - ref).toFixed(4)}` : DASH;
    return [
      optimizerName(r.optimizer),
      String(r.frequency),
      r.status === 'completed' ? fmtLoss(r.final_val_loss) : `${fmtLoss(r.final_val_loss)} (${r.status.replace('_', ' ')})`,
      delta,
      r.seconds_per_step === null ? DASH : r.seconds_per_step.toFixed(3),
      r.steps_to_target === null ? 'not reached' : formatSteps(r.steps_to_target),
      `${r.sweep}/${r.run}`,
    ];
  });
  return [
    `## Precondition frequency (seed ${f.seed}, full budget)`,
    '',
    `Refreshing the eigenbases (SOAP) or inverse roots (Shampoo) every f steps. Frequency 10 is stage 2's full-budget run. Steps to AdamW's final loss${f.target_loss !== null ? ` (${fmtLoss(f.target_loss)})` : ''} are read off each run's validation curve.`,
    '',
    mdTable(['optimizer', 'frequency', 'final val loss', 'vs frequency 10', 'training s/step', "steps to AdamW's final loss", 'run'], rows),
  ];
}

function lrSection(r: NonNullable<ReproduceResults['lr']>): string[] {
  const rates = [...new Set(r.runs.map((x) => x.lr).filter((lr): lr is number => lr !== null))].sort((a, b) => a - b);
  const optimizers = [...new Set(r.runs.map((x) => x.optimizer))];
  const rows = optimizers.map((o) => [
    optimizerName(o),
    ...rates.map((lr) => {
      const run = r.runs.find((x) => x.optimizer === o && x.lr === lr);
      if (!run) return DASH;
      const loss = run.status === 'completed' ? fmtLoss(run.final_val_loss) : `${run.status.replace('_', ' ')}`;
      return r.best[o]?.run === run.run ? `**${loss}**` : loss;
    }),
    fmtLr(r.best[o]?.lr),
  ]);
  return ['## Learning-rate sweep (stage 1)', '', 'Final validation loss at half the budget; the best per optimizer in bold, the rate stages 2–4 use.', '', mdTable(['optimizer', ...rates.map((lr) => `lr ${fmtLr(lr)}`), 'best'], rows)];
}

function batchSection(b: BatchAnalysis | null, s: StudySetup): string[] {
  const head = `## Is ${fmtInt(s.tokens_per_step)} tokens per step a large batch here? (stage 0)`;
  if (!b) return [head, '', `Stage 0 did not run (or fewer than two of its runs completed): the study uses ${fmtInt(s.tokens_per_step)} tokens per step without a measured critical batch.`];
  const rows = b.runs.map((r) => [String(r.batch_size), fmtInt(r.tokens_per_step), r.steps_to_target === null ? 'not reached' : formatSteps(r.steps_to_target), r.tokens_to_target === null ? DASH : fmtInt(r.tokens_to_target), fmtLoss(r.final_val_loss)]);
  const out = [
    head,
    '',
    `AdamW at ${list(b.runs.map((r) => r.batch_size))} sequences per step for the same number of steps; target: validation loss ${fmtLoss(b.target_loss)}, the highest final loss among them (all reached it).`,
    '',
    mdTable(['batch (sequences)', 'tokens per step', 'steps to target', 'tokens to target', 'final val loss'], rows),
    '',
  ];
  if (b.doublings.length > 0) out.push(`Doubling the batch divided the steps to the target by ${b.doublings.map((d) => `${d.speedup.toFixed(2)} (${d.from} → ${d.to})`).join(' and ')}; 2 would be perfect scaling, 1 no gain.`);
  if (b.fit && b.critical) {
    const over = b.study_batch.over_critical!;
    out.push(
      '',
      `Fit S(B) = S_min·(1 + B_noise/B): S_min = ${b.fit.s_min.toFixed(1)} steps, B_noise = ${b.critical.sequences.toFixed(1)} sequences = ${fmtInt(b.critical.tokens)} tokens (max |residual| ${b.fit.max_abs_residual.toFixed(1)} steps). The study's batch, ${b.study_batch.sequences} sequences = ${fmtInt(b.study_batch.tokens)} tokens, is ${over.toFixed(2)}× B_noise: ${over >= 1 ? 'at or above the critical batch, the large-batch regime by this measure' : 'below the critical batch by this measure'} (at this target; the critical batch grows as the loss falls).`,
    );
  } else {
    out.push('', 'No critical batch could be fitted: the steps to the target do not level off with the batch over these sizes (S_min ≤ 0 or steps not falling).');
  }
  return out;
}

/** The whole page. `resultsJson` is the file name the page points to. */
export function renderResultsMarkdown(r: ReproduceResults, resultsJson = 'results.json'): string {
  const total = r.sweeps.reduce((n, s) => n + Object.values(s.counts).reduce((a, b) => a + b, 0), 0);
  const completed = r.sweeps.reduce((n, s) => n + (s.counts.completed ?? 0), 0);
  const out = [
    '# Does SOAP beat AdamW here? Results of `npm run reproduce`',
    '',
    `<!-- Generated by ${r.generator} from ${resultsJson} (${r.generated_at}); do not edit: run \`npm run reproduce\` again (it skips finished runs), or \`npm run reproduce -- --report-only\`. -->`,
    '',
    `Generated ${r.generated_at.slice(0, 10)} from the runs in \`${r.study.out_dir}/\`; [${resultsJson}](${resultsJson}) holds the same numbers. ${completed} of ${total} planned runs completed.`,
  ];
  if (!r.complete) out.push('', '**The study is not complete**: the numbers below come from the runs that finished (see "Runs" at the end).');
  out.push('', '## Setup', '', setupTable(r.study));
  if (r.headline) out.push('', ...headlineSection(r.headline, r));
  if (r.charts) out.push('', '## Charts', '', `Seed 0, full budget, each optimizer at its best rate: train (solid) and validation (dashed) loss.`, '', `![Loss against steps](${r.charts.loss_steps})`, '', `![Loss against training time](${r.charts.loss_seconds})`);
  if (r.frequency) out.push('', ...frequencySection(r.frequency));
  if (r.lr) out.push('', ...lrSection(r.lr));
  out.push('', ...batchSection(r.batch, r.study));
  const notes = [...r.notes, ...(r.headline?.notes ?? []), ...(r.frequency?.notes ?? [])];
  if (notes.length > 0) out.push('', '## Notes', '', ...notes.map((n) => `- ${n}`));
  out.push('', '## Runs', '', mdTable(['sweep', 'runs', 'not completed'], r.sweeps.map((s) => [s.name, Object.entries(s.counts).map(([k, v]) => `${v} ${k.replace('_', ' ')}`).join(', '), s.unfinished.length > 0 ? s.unfinished.join(', ') : DASH])));
  return `${out.join('\n')}\n`;
}
