/**
 * The tokenizer registry: a static list of names, so `--tokenizer` can say what exists.
 */
import { badInput } from '../../errors.js';
import { loadCl100k, loadGpt2 } from './bpe.js';
import { ByteTokenizer } from './byte.js';
import type { Tokenizer } from './types.js';

export type { Tokenizer, TokenIds } from './types.js';
export { EOT_TEXT } from './types.js';

/** BPE tables load on first use only (a dynamic import), so `byte` stays instant. */
const FACTORIES: Record<string, () => Promise<Tokenizer>> = {
  byte: async () => new ByteTokenizer(),
  gpt2: loadGpt2,
  cl100k: loadCl100k,
};

/** Names accepted by {@link loadTokenizer}. */
export function tokenizerNames(): string[] {
  return Object.keys(FACTORIES);
}

/**
 * The tokenizer called `name`; an unknown name is a bad-input error listing the known ones.
 * Async because BPE tokenizers load their rank tables lazily.
 */
export async function loadTokenizer(name: string, field = '--tokenizer'): Promise<Tokenizer> {
  const factory = Object.hasOwn(FACTORIES, name) ? FACTORIES[name] : undefined;
  if (!factory) {
    throw badInput(`unknown tokenizer "${name}"`, { field, fix: `use one of: ${tokenizerNames().join(', ')}` });
  }
  return factory();
}
