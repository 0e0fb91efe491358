/**
 * A JSON Lines file read as bytes, one line at a time, for every dataset reader (SFT/PTX examples,
 * RL prompts, preference files). Each line is decoded on its own with a fatal UTF-8 decoder, so a line
 * that is not UTF-8 becomes a problem (`not UTF-8 …`) instead of text with U+FFFD silently in it, and
 * the lines around it are still read. `\n`, `\r\n` and a lone `\r` end a line (as node's readline
 * does); a UTF-8 byte-order mark on line 1 is dropped; a line over `maxLineBytes` is reported with its
 * size and is never held in memory whole. The file is streamed: memory stays at one line.
 */
import { createReadStream } from 'node:fs';

/** Line numbers are 1-based; blank lines are yielded too (as `text: ''` or whitespace). */
export type JsonlLine =
  { readonly line: number; readonly text: string } | { readonly line: number; readonly problem: string };

export interface ReadJsonlLinesOptions {
  /** Longer lines are reported instead of read. Default: no limit. */
  readonly maxLineBytes?: number;
}

const newline = 0x0a;
const carriageReturn = 0x0d;

export async function* readJsonlLines(file: string, options: ReadJsonlLinesOptions = {}): AsyncGenerator<JsonlLine> {
  const maxLineBytes = options.maxLineBytes ?? Infinity;
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  /** Bytes of the current line once it went over the limit (its bytes are then counted, not kept). */
  let overLimit: number | undefined;
  let lastByte = 0;
  let line = 0;

  const append = (piece: Buffer) => {
    if (piece.length === 0) return;
    lastByte = piece[piece.length - 1];
    if (overLimit !== undefined) {
      overLimit += piece.length;
    } else if (pendingBytes + piece.length > maxLineBytes + 1) {
      // +1: a trailing \r of a CRLF line does not count towards the limit.
      overLimit = pendingBytes + piece.length;
      pending = [];
      pendingBytes = 0;
    } else {
      pending.push(piece);
      pendingBytes += piece.length;
    }
  };

  /** The lines of one \n-terminated segment (more than one only when it holds lone \r line ends). */
  function* finish(): Generator<JsonlLine> {
    if (overLimit !== undefined) {
      const bytes = overLimit - (lastByte === carriageReturn ? 1 : 0);
      overLimit = undefined;
      if (bytes > maxLineBytes) {
        yield {
          line: ++line,
          problem: `line is ${bytes} bytes, over the limit of ${maxLineBytes}; split the example or raise the limit`,
        };
        return;
      }
    }
    let segment = Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    if (segment.length > 0 && segment[segment.length - 1] === carriageReturn)
      segment = segment.subarray(0, segment.length - 1);
    for (const bytes of splitOnCarriageReturns(segment)) {
      line++;
      yield decodeLine(decoder, line === 1 ? dropUtf8Bom(bytes) : bytes, line);
    }
  }

  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    let start = 0;
    for (let end = chunk.indexOf(newline, start); end >= 0; end = chunk.indexOf(newline, start)) {
      append(chunk.subarray(start, end));
      yield* finish();
      start = end + 1;
      lastByte = newline;
    }
    append(chunk.subarray(start));
  }
  if (pendingBytes > 0 || overLimit !== undefined) yield* finish();
}

function splitOnCarriageReturns(segment: Buffer): Buffer[] {
  if (segment.indexOf(carriageReturn) < 0) return [segment];
  const parts: Buffer[] = [];
  let start = 0;
  for (let end = segment.indexOf(carriageReturn); end >= 0; end = segment.indexOf(carriageReturn, start)) {
    parts.push(segment.subarray(start, end));
    start = end + 1;
  }
  parts.push(segment.subarray(start));
  return parts;
}

function dropUtf8Bom(bytes: Buffer): Buffer {
  return bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? bytes.subarray(3) : bytes;
}

function decodeLine(decoder: TextDecoder, bytes: Buffer, line: number): JsonlLine {
  try {
    return { line, text: decoder.decode(bytes) };
  } catch {
    if (
      line === 1 &&
      bytes.length >= 2 &&
      ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff))
    ) {
      return { line, problem: 'not UTF-8: the file starts with a UTF-16 byte-order mark; save it as UTF-8' };
    }
    const at = firstInvalidUtf8Byte(bytes);
    if (at < 0) return { line, problem: 'not UTF-8; save the file as UTF-8' };
    return {
      line,
      problem:
        `not UTF-8 (byte 0x${bytes[at].toString(16).toUpperCase().padStart(2, '0')} at byte ${at + 1} of the ` +
        `line); save the file as UTF-8`,
    };
  }
}

/**
 * Offset of the first byte that is not part of well-formed UTF-8 (the decoder says only that one
 * exists). Ranges from the Unicode standard, table 3-7: no overlong forms, no surrogates, ≤ U+10FFFF.
 */
export function firstInvalidUtf8Byte(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i];
    if (lead < 0x80) {
      i++;
      continue;
    }
    const [length, low, high] =
      lead >= 0xc2 && lead <= 0xdf
        ? [2, 0x80, 0xbf]
        : lead === 0xe0
          ? [3, 0xa0, 0xbf]
          : lead === 0xed
            ? [3, 0x80, 0x9f]
            : lead >= 0xe1 && lead <= 0xef
              ? [3, 0x80, 0xbf]
              : lead === 0xf0
                ? [4, 0x90, 0xbf]
                : lead >= 0xf1 && lead <= 0xf3
                  ? [4, 0x80, 0xbf]
                  : lead === 0xf4
                    ? [4, 0x80, 0x8f]
                    : [0, 0, 0];
    if (length === 0) return i;
    // The second byte has the lead's own range; the rest are plain continuation bytes.
    for (let k = 1; k < length; k++) {
      const byte = bytes[i + k];
      const [min, max] = k === 1 ? [low, high] : [0x80, 0xbf];
      if (byte === undefined || byte < min || byte > max) return i;
    }
    i += length;
  }
  return -1;
}
