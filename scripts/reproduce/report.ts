/**
 * After the stages (or alone, `--report-only`): read every sweep of the study back from its
 * folder, compute results.json (analyze.ts), draw the two charts, write RESULTS.md, and put the
 * README section between its markers.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { loadConfig, parseOverride } from '../../src/config/load.js';
import type { ExperimentConfig } from '../../src/config/schema.js';
import { ranOnBackend } from '../../src/compare/index.js';
import type { RunRecord } from '../../src/run/read-run.js';
import type { SweepPlan } from '../../src/sweep/plan.js';
import { analyzeStudy, describeSetup, loadSweepData, type ReproduceResults, type StudyData, type SweepData } from './analyze.js';
import { writeCharts } from './charts.js';
import { fmtLr, optimizerName } from './format.js';
import { seedOf } from './headline.js';
import { lrOf, overridesTree } from './rates.js';
import { renderReadmeSection, spliceReadme } from './readme-section.js';
import { renderResultsMarkdown } from './results-md.js';
import { planSweep } from './run-sweep.js';
import { SEED_REPEATS, stageSweeps, type StageDef, type StudyLayout } from './study.js';

export const RESULTS_JSON = 'results.json';
export const RESULTS_MD = 'RESULTS.md';
export const READING_MD = 'READING.md';
/** What the driver records in `<out>/study.json` when it runs stages (report-only reads it back). */
export const STUDY_JSON = 'study.json';

export interface ReportTargets {
  root: string;
  resultsDir: string;
  /** README.md to update, or null. */
  readme: string | null;
  log: (line: string) => void;
  now?: Date;
}

const unique = (xs: readonly number[]) => [...new Set(xs)].sort((a, b) => a - b);

function planOrBuild(data: SweepData | null | undefined, stage: StageDef, layout: StudyLayout, index: number): SweepPlan {
  return data?.plan ?? planSweep(stageSweeps(stage, layout, null)[index]);
}

/** How many runs at once the stages ran with, as the driver recorded it. */
function recordedJobs(out: string): number | null {
  try {
    const jobs = (JSON.parse(readFileSync(join(out, STUDY_JSON), 'utf8')) as { jobs?: unknown }).jobs;
    return typeof jobs === 'number' ? jobs : null;
  } catch {
    return null;
  }
}

/** Reads the study's sweeps and computes results.json's content (no file written). */
export function collectStudy(stages: readonly StageDef[], layout: StudyLayout, scale: { factor: number; quick: boolean }, root: string, now: Date): { results: ReproduceResults; data: StudyData } {
  const data: StudyData = {};
  for (const stage of stages) data[stage.id] = stageSweeps(stage, layout, null).map((s) => loadSweepData(s.name, s.dir));
  const byId = (id: StageDef['id']) => stages.find((s) => s.id === id)!;
  const adamwPlan = planOrBuild(data.headline?.[0], byId('headline'), layout, 0);
  const familyPlan = planOrBuild(data.headline?.[1], byId('headline'), layout, 1);
  const lrPlan = planOrBuild(data.lr?.[0], byId('lr'), layout, 0);
  const freqPlan = planOrBuild(data.frequency?.[0], byId('frequency'), layout, 0);
  const config: ExperimentConfig = loadConfig(adamwPlan.base, adamwPlan.runs[0].set.map(parseOverride)).config;
  const frequencyOf = (set: readonly string[]) => {
    const f = (overridesTree(set).optimizer as { precondition_frequency?: unknown } | undefined)?.precondition_frequency;
    return typeof f === 'number' ? [f] : [];
  };
  const records = Object.values(data).flatMap((sweeps) => (sweeps ?? []).flatMap((s) => s?.records ?? []));
  const setup = describeSetup(config, {
    out_dir: relative(root, layout.out) || '.',
    budget_scale: scale.factor,
    quick: scale.quick,
    jobs: recordedJobs(layout.out),
    family_steps: unique(familyPlan.runs.map((r) => r.steps)),
    lr_grid: unique(lrPlan.runs.map((r) => lrOf(r.set)).filter((lr): lr is number => lr !== null)),
    frequencies: unique([...familyPlan.runs, ...freqPlan.runs].flatMap((r) => frequencyOf(r.set))),
    seeds: unique([config.train.seed, ...SEED_REPEATS]),
    backends: [...new Set(records.map(ranOnBackend))].sort(),
  });
  return { results: analyzeStudy(data, setup, now), data };
}

/** The runs the charts draw: the lowest seed's full-budget run of each optimizer in stage 2. */
export function chartRuns(data: StudyData): { run: RunRecord; label: string }[] {
  const runs = (data.headline ?? []).flatMap((s) => s?.records ?? []).filter((r) => r.evals.length > 0);
  if (runs.length === 0) return [];
  const seed = Math.min(...runs.map(seedOf));
  const out: { run: RunRecord; label: string }[] = [];
  for (const optimizer of [...new Set(runs.map((r) => r.optimizer))]) {
    const mine = runs.filter((r) => r.optimizer === optimizer && seedOf(r) === seed);
    const full = mine.reduce<RunRecord | undefined>((a, r) => (!a || r.plannedSteps > a.plannedSteps ? r : a), undefined);
    const lr = (full?.config.optimizer as { lr?: number } | undefined)?.lr;
    if (full) out.push({ run: full, label: `${optimizerName(optimizer)} (lr ${fmtLr(lr)})` });
  }
  return out;
}

/** Writes results.json, the charts, RESULTS.md and (when given) the README section. */
export async function writeStudyReport(stages: readonly StageDef[], layout: StudyLayout, scale: { factor: number; quick: boolean }, targets: ReportTargets): Promise<ReproduceResults> {
  const { results, data } = collectStudy(stages, layout, scale, targets.root, targets.now ?? new Date());
  mkdirSync(targets.resultsDir, { recursive: true });
  const runs = chartRuns(data);
  if (runs.length > 0) {
    const drawn = await writeCharts(targets.resultsDir, runs);
    for (const w of drawn.warnings) targets.log(`chart warning: ${w}`);
    results.charts = drawn.files;
  }
  writeFileSync(join(targets.resultsDir, RESULTS_JSON), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(targets.resultsDir, RESULTS_MD), renderResultsMarkdown(results, RESULTS_JSON));
  targets.log(`wrote ${relative(targets.root, join(targets.resultsDir, RESULTS_MD))}, ${RESULTS_JSON}${results.charts ? ' and the charts' : ''}`);
  if (targets.readme) {
    const readingFile = join(layout.studyDir, READING_MD);
    const reading = existsSync(readingFile) ? readFileSync(readingFile, 'utf8') : '_No reading yet._';
    const before = readFileSync(targets.readme, 'utf8');
    const section = renderReadmeSection(results, reading, { resultsDir: relative(join(targets.readme, '..'), targets.resultsDir) || '.' });
    const after = spliceReadme(before, section);
    if (after !== before) {
      writeFileSync(targets.readme, after);
      targets.log(`updated the "Does SOAP beat AdamW here?" section of ${relative(targets.root, targets.readme)}`);
    }
  }
  return results;
}
