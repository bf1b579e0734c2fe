/**
 * The dataset's vocabulary, from the `meta.json` that `prepare` writes beside its shards, and the
 * check that a model's embedding table is large enough for it.
 *
 * Shard headers name no tokenizer, so without this a model with `vocab_size` 256 on GPT-2 shards
 * would only fail at the first token ≥ 256 the sampler happens to draw, possibly hours in. With
 * the meta.json the mismatch is caught before anything is written, naming both numbers.
 *
 * Shards written by other tools (llm.c, modded-nanogpt, nanoGPT `train.bin`) have no meta.json:
 * they skip this check, and their token ids are still checked as the reader streams them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { badInput } from '../errors.js';
import { relativeOrAbsolute, type TokenDataset } from './dataset.js';
import { META_FORMAT } from './prepare.js';

/** What a dataset's meta.json says about its vocabulary. */
export interface DatasetVocab {
  /** Token ids in the dataset are below this. */
  vocabSize: number;
  /** The tokenizer `prepare` used (`byte`, `gpt2`, `cl100k`, …). */
  tokenizer: string;
  /** The meta.json it came from (relative to the working directory when inside it). */
  metaFile: string;
}

/**
 * Reads one meta.json: `null` when it is absent or another tool's (no `soap-train.tokens/…`
 * format tag); a bad-input error when it is ours but unreadable or lacks the vocabulary.
 */
function readMetaVocab(metaPath: string): DatasetVocab | null {
  if (!existsSync(metaPath)) return null;
  const file = relativeOrAbsolute(metaPath);
  let meta: unknown;
  try {
    meta = JSON.parse(readFileSync(metaPath, 'utf8'));
  } catch (err) {
    throw badInput(`cannot read the dataset's meta.json (${(err as Error).message})`, {
      file,
      fix: 're-run `soap-train prepare --force` on the inputs, or delete it to skip the vocabulary check',
    });
  }
  const m = meta as { format?: unknown; tokenizer?: { name?: unknown; vocab_size?: unknown } } | null;
  if (m === null || typeof m !== 'object' || typeof m.format !== 'string' || !m.format.startsWith('soap-train.tokens/')) return null;
  if (m.format !== META_FORMAT) {
    throw badInput(`unknown meta.json format "${m.format}" (this soap-train reads ${META_FORMAT})`, { file, fix: 're-run `soap-train prepare --force`' });
  }
  const vocabSize = m.tokenizer?.vocab_size;
  const name = m.tokenizer?.name;
  if (typeof vocabSize !== 'number' || !Number.isSafeInteger(vocabSize) || vocabSize < 1 || typeof name !== 'string') {
    throw badInput('meta.json has no valid tokenizer.name / tokenizer.vocab_size', { file, field: 'tokenizer', fix: 're-run `soap-train prepare --force`' });
  }
  return { vocabSize, tokenizer: name, metaFile: file };
}

/**
 * The vocabulary of the dataset(s): the `meta.json` in each shard's folder, read once per folder.
 * Folders without one (shards from other tools) are left out; `null` when no folder has one.
 * Every meta.json found must name the same tokenizer and vocabulary size (when `ds` is several
 * datasets, e.g. train and val, across all of them), else a one-line bad-input error naming both
 * files: training on GPT-2 ids and evaluating on byte ids would give a meaningless val loss.
 */
export function datasetVocab(ds: TokenDataset | readonly TokenDataset[]): DatasetVocab | null {
  const sets: readonly TokenDataset[] = Array.isArray(ds) ? ds : [ds as TokenDataset];
  const dirs = [...new Set(sets.flatMap((d) => d.files.map((f) => dirname(f))))];
  let found: DatasetVocab | null = null;
  for (const dir of dirs) {
    const vocab = readMetaVocab(join(dir, 'meta.json'));
    if (!vocab) continue;
    if (found && (found.vocabSize !== vocab.vocabSize || found.tokenizer !== vocab.tokenizer)) {
      throw badInput(
        `tokenizer ${vocab.tokenizer} (vocabulary ${vocab.vocabSize}) differs from ${found.metaFile}: tokenizer ${found.tokenizer} (vocabulary ${found.vocabSize})`,
        { file: vocab.metaFile, fix: 'point data.train and data.val at shards prepared with the same tokenizer' },
      );
    }
    found ??= vocab;
  }
  return found;
}

/** Where the model's vocabulary size came from, for the error message. */
export interface VocabCheckPlace {
  /** The config file (the error's first part). */
  configFile?: string;
  /** The dotted field holding the model's vocabulary size (default `model.vocab_size`). */
  field?: string;
}

/**
 * Refuses a model whose vocabulary is smaller than the dataset's (`modelVocab < vocabSize` from
 * meta.json): a one-line bad-input error (exit 2) naming both numbers, the meta.json and the
 * tokenizer. A larger model vocabulary is fine (padding to a multiple of 64, as modded-nanogpt's
 * 50304, only adds rows that are never targets). Returns the dataset's vocabulary, or `null`
 * when no shard folder has a meta.json (then only the streamed id check applies).
 */
export function checkModelVocab(ds: TokenDataset | readonly TokenDataset[], modelVocab: number, place: VocabCheckPlace = {}): DatasetVocab | null {
  const vocab = datasetVocab(ds);
  const field = place.field ?? 'model.vocab_size';
  if (vocab && modelVocab < vocab.vocabSize) {
    throw badInput(`${modelVocab} is smaller than the dataset's vocabulary ${vocab.vocabSize} (${vocab.metaFile}, tokenizer ${vocab.tokenizer})`, {
      file: place.configFile,
      field,
      fix: `set ${field} ≥ ${vocab.vocabSize}`,
    });
  }
  return vocab;
}
