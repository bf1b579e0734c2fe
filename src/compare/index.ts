/**
 * The steps-to-target comparison (the paper's metric) as a library: `compareRuns` computes it
 * from run records (src/run/read-run.ts), the formatters print it. Used by `soap-train compare`
 * and by `sweep` after a sweep.
 */
export { compareRuns, type CompareBaseline, type CompareResult, type CompareRow } from './compare.js';
export { firstCrossing, type CurvePoint } from './crossing.js';
export { familyKey, groupFamilies, ranOnBackend } from './families.js';
export { formatCompareMarkdown, formatCompareTable, formatRatio, formatSeconds, formatSteps } from './format.js';
export { fitPowerLaw, stepsToLoss, type FitPoint, type PowerLawFit } from './power-law.js';
