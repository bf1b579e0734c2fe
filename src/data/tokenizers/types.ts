/**
 * The tokenizer interface `prepare` and the samplers' users rely on.
 *
 * A tokenizer is deterministic text → ids (so prepared shards are byte-identical on re-run) with
 * a fixed vocabulary size and an end-of-text id that `prepare` puts before every document.
 */

/** Token ids as the tokenizer produces them; plain arrays and typed arrays both read by index. */
export type TokenIds = ArrayLike<number> & Iterable<number>;

export interface Tokenizer {
  /** Registry name, recorded in meta.json (`byte`, `gpt2`). */
  readonly name: string;
  /** Ids are in [0, vocabSize). */
  readonly vocabSize: number;
  /** The document separator id. */
  readonly eotToken: number;
  /** Text → ids; never emits `eotToken` for ordinary text. */
  encode(text: string): TokenIds;
  /** Ids → text; the end-of-text id renders as `<|endoftext|>`. */
  decode(ids: ArrayLike<number>): string;
}

/** How the end-of-text token reads when decoded (GPT-2's spelling). */
export const EOT_TEXT = '<|endoftext|>';
