/**
 * TFRecord framing, the container of TensorBoard event files. Each record, little-endian:
 *
 *     uint64 length | uint32 masked CRC-32C of the 8 length bytes | data[length] | uint32 masked CRC-32C of data
 *
 * as TensorFlow's record writer (and tensorboard/summary/writer/record_writer.py) writes it. The mask rotates the
 * CRC right by 15 bits and adds a constant, so a CRC computed over data that itself holds CRCs stays useful.
 */
import { buf as crc32c } from 'crc-32/crc32c';

const lengthBytes = 8;
const crcBytes = 4;
/** Bytes before a record's data: the length and its CRC. */
export const recordHeaderBytes = lengthBytes + crcBytes;
/** Bytes a record adds around its data: header and the data's CRC. */
export const recordOverheadBytes = recordHeaderBytes + crcBytes;
const crcMaskDelta = 0xa282ead8;
const crcRotation = 15;
const uint32Bits = 32;

/** TensorFlow's masked CRC-32C of `bytes`, as an unsigned 32-bit number. */
export function maskedCrc32c(bytes: Uint8Array): number {
  const crc = crc32c(bytes) >>> 0;
  return ((((crc >>> crcRotation) | (crc << (uint32Bits - crcRotation))) >>> 0) + crcMaskDelta) >>> 0;
}

/** One whole record: where it starts in the file and its data (a view into the buffer given). */
export interface TfRecord {
  readonly offset: number;
  readonly data: Uint8Array;
}

export interface FramedRecords {
  readonly records: TfRecord[];
  /** File offset just after the last whole record: where the next read starts. */
  readonly end: number;
  /** Set when a record's checksum is wrong: the file offset of that record and what is wrong with it. */
  readonly damage?: { readonly offset: number; readonly reason: string };
}

/**
 * The whole records in `bytes`, which hold the file from offset `fileOffset` on. A record cut off at the end (a file
 * still being written) ends the list without damage: its bytes are read again, whole, on a later call from `end`.
 * A wrong length or data checksum ends it with `damage`: nothing after it can be framed, since the length of the
 * damaged record (and so where the next one starts) cannot be trusted.
 */
export function frameRecords(bytes: Uint8Array, fileOffset: number): FramedRecords {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: TfRecord[] = [];
  let position = 0;
  while (bytes.byteLength - position >= recordHeaderBytes) {
    const offset = fileOffset + position;
    const length = view.getBigUint64(position, true);
    const lengthCrc = view.getUint32(position + lengthBytes, true);
    if (maskedCrc32c(bytes.subarray(position, position + lengthBytes)) !== lengthCrc)
      return { records, end: offset, damage: { offset, reason: "the record's length checksum does not match" } };
    if (length > BigInt(bytes.byteLength - position - recordOverheadBytes)) break;
    const dataStart = position + recordHeaderBytes;
    const dataEnd = dataStart + Number(length);
    const data = bytes.subarray(dataStart, dataEnd);
    if (maskedCrc32c(data) !== view.getUint32(dataEnd, true))
      return { records, end: offset, damage: { offset, reason: "the record's data checksum does not match" } };
    records.push({ offset, data });
    position = dataEnd + crcBytes;
  }
  return { records, end: fileOffset + position };
}
