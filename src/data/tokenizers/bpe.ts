/**
 * OpenAI BPE tokenizers from `gpt-tokenizer` (MIT; the rank tables ship inside the package, so
 * nothing is downloaded): `gpt2` (r50k_base, vocab 50,257, the GPT-2 / llm.c / modded-nanogpt
 * vocabulary) and `cl100k` (cl100k_base, ids up to 100,276: stored as uint32 shards).
 *
 * Text is encoded as ordinary text: a literal "<|endoftext|>" inside a document becomes the
 * plain tokens for those characters, never the end-of-text id (tiktoken's `encode_ordinary`),
 * so only `prepare` places document separators.
 */
import type { Tokenizer } from './types.js';

/** The subset of gpt-tokenizer's per-encoding API used here. */
interface BpeApi {
  encode(text: string, opts?: { disallowedSpecial?: Set<string>; allowedSpecial?: Set<string> }): number[];
  decode(ids: Iterable<number>): string;
}

const NO_SPECIAL = { disallowedSpecial: new Set<string>(), allowedSpecial: new Set<string>() };

class BpeTokenizer implements Tokenizer {
  constructor(
    readonly name: string,
    readonly vocabSize: number,
    readonly eotToken: number,
    private readonly api: BpeApi,
  ) {}

  encode(text: string): number[] {
    return this.api.encode(text, NO_SPECIAL);
  }

  decode(ids: ArrayLike<number>): string {
    return this.api.decode(Array.from(ids));
  }
}

/** GPT-2's BPE: vocab 50,257, end-of-text 50,256 (ids fit uint16 shards). */
export async function loadGpt2(): Promise<Tokenizer> {
  const mod = await import('gpt-tokenizer/encoding/r50k_base');
  return new BpeTokenizer('gpt2', 50257, 50256, mod.default);
}

/**
 * cl100k_base (GPT-3.5/4): regular ids below 100,256, specials up to 100,276, so the vocab size
 * is 100,277 and shards use the uint32 (llama3-layout) variant. End-of-text is 100,257.
 */
export async function loadCl100k(): Promise<Tokenizer> {
  const mod = await import('gpt-tokenizer/encoding/cl100k_base');
  return new BpeTokenizer('cl100k', 100277, 100257, mod.default);
}
