/**
 * Byte-level tokenizer: a token is one UTF-8 byte, vocabulary 256.
 *
 * The end-of-text token is byte 0xFF: it never occurs in well-formed UTF-8 (nor do 0xC0, 0xC1 and
 * 0xF5–0xFE), and JavaScript strings always encode to well-formed UTF-8 (lone surrogates become
 * U+FFFD), so the separator cannot collide with text and the vocabulary stays exactly 256 — the
 * size every byte-level config uses. Decoding splits on 0xFF and renders it as `<|endoftext|>`.
 */
import { EOT_TEXT, type Tokenizer } from './types.js';

export const BYTE_EOT = 0xff;

const encoder = new TextEncoder();

export class ByteTokenizer implements Tokenizer {
  readonly name = 'byte';
  readonly vocabSize = 256;
  readonly eotToken = BYTE_EOT;

  /** UTF-8 bytes of the text. */
  encode(text: string): Uint8Array {
    return encoder.encode(text);
  }

  /** UTF-8 decode (invalid sequences become U+FFFD); 0xFF becomes `<|endoftext|>`. */
  decode(ids: ArrayLike<number>): string {
    const bytes = Uint8Array.from(ids as ArrayLike<number>);
    const decoder = new TextDecoder('utf-8');
    const parts: string[] = [];
    let start = 0;
    for (let i = 0; i <= bytes.length; i++) {
      if (i === bytes.length || bytes[i] === BYTE_EOT) {
        parts.push(decoder.decode(bytes.subarray(start, i)));
        start = i + 1;
      }
    }
    return parts.join(EOT_TEXT);
  }
}
