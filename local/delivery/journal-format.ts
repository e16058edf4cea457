// The delivery journal's framing on disk. Every record is a frame that starts with a magic number
// and carries a checksum of its header and one of its data, so that a reader can tell a frame that
// was never finished (the end of the file) from one that was damaged, and can find the next good
// frame after a damaged one instead of losing everything behind it.
import * as zlib from "node:zlib";

/** The four bytes every frame starts with: "IOTJ". */
export const FRAME_MAGIC = Buffer.from("IOTJ", "latin1");

/**
 * magic (4) | data length u32 (4) | kind u8 (1) | arrival f64, epoch ms (8) | header CRC-32 of the
 * bytes before it (4) | data CRC-32 (4) | data. Little-endian.
 */
export const FRAME_HEADER_BYTES = 25;

/**
 * The largest data a frame may carry: a Firehose record is at most 1,000 KiB, an error-action
 * message a little more than the base64 of a 128 KB payload. A header announcing more is damaged.
 */
export const MAX_FRAME_DATA_BYTES = 4 * 1024 * 1024;

export const KIND_RECORD = 0;
export const KIND_ERROR = 1;

export interface JournalRecord {
  /** KIND_RECORD or KIND_ERROR (under the error output prefix). */
  readonly kind: number;
  /** When the delivery stream took the record (epoch ms): it names the object's hour. */
  readonly arrival: number;
  readonly data: Buffer;
}

/** A run of bytes the reader could not use. */
export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

export interface SegmentScan {
  readonly records: JournalRecord[];
  /** Damaged regions between good frames, in file order. */
  readonly damaged: ByteRange[];
  /**
   * An unfinished last frame: the write that was in progress when the process died, or that failed
   * and could not be cut off. It was never acknowledged.
   */
  readonly unfinished?: ByteRange;
}

/** The bytes of the frame of a record of `data`; throws RangeError for data a frame may not carry. */
export function frameBytes(data: Buffer): number {
  if (data.length > MAX_FRAME_DATA_BYTES) {
    throw new RangeError(`a journal record holds at most ${MAX_FRAME_DATA_BYTES} bytes`);
  }
  return FRAME_HEADER_BYTES + data.length;
}

/**
 * Writes a record's frame into `out` at `at` and returns where it ends: the journal writer frames
 * a whole batch into one buffer this way, with no buffer per frame (issue 28).
 */
export function encodeFrameInto(out: Buffer, at: number, r: JournalRecord): number {
  const end = at + frameBytes(r.data);
  FRAME_MAGIC.copy(out, at);
  out.writeUInt32LE(r.data.length, at + 4);
  out.writeUInt8(r.kind, at + 8);
  out.writeDoubleLE(r.arrival, at + 9);
  out.writeUInt32LE(zlib.crc32(out.subarray(at, at + 17)), at + 17);
  out.writeUInt32LE(zlib.crc32(r.data), at + 21);
  r.data.copy(out, at + FRAME_HEADER_BYTES);
  return end;
}

/** One record's frame on its own. */
export function encodeFrame(r: JournalRecord): Buffer {
  const out = Buffer.allocUnsafe(frameBytes(r.data));
  encodeFrameInto(out, 0, r);
  return out;
}

/** The data length of a frame whose header at `at` is intact, or undefined. */
function headerAt(buf: Buffer, at: number): number | undefined {
  if (at + FRAME_HEADER_BYTES > buf.length) return undefined;
  if (buf.compare(FRAME_MAGIC, 0, 4, at, at + 4) !== 0) return undefined;
  if (zlib.crc32(buf.subarray(at, at + 17)) !== buf.readUInt32LE(at + 17)) return undefined;
  const length = buf.readUInt32LE(at + 4);
  return length <= MAX_FRAME_DATA_BYTES ? length : undefined;
}

/** Whether the bytes from `at` to the end could be the start of a header that was cut short. */
function couldBeCutHeader(buf: Buffer, at: number): boolean {
  const rest = buf.length - at;
  if (rest >= FRAME_HEADER_BYTES) return false;
  const n = Math.min(rest, FRAME_MAGIC.length);
  return buf.compare(FRAME_MAGIC, 0, n, at, at + n) === 0;
}

/**
 * Reads every intact frame of a segment. A damaged stretch (bad magic, header or data checksum) is
 * skipped up to the next intact frame and reported; a frame cut off by the end of the file is
 * reported as unfinished.
 */
export function scanSegment(buf: Buffer): SegmentScan {
  const records: JournalRecord[] = [];
  const damaged: ByteRange[] = [];
  let unfinished: ByteRange | undefined;
  let badFrom = -1;
  const endBad = (at: number) => {
    if (badFrom >= 0) damaged.push({ offset: badFrom, length: at - badFrom });
    badFrom = -1;
  };
  let at = 0;
  while (at < buf.length) {
    const length = headerAt(buf, at);
    if (length !== undefined) {
      const end = at + FRAME_HEADER_BYTES + length;
      endBad(at);
      if (end > buf.length) {
        unfinished = { offset: at, length: buf.length - at };
        break;
      }
      const data = buf.subarray(at + FRAME_HEADER_BYTES, end);
      if (zlib.crc32(data) === buf.readUInt32LE(at + 21)) {
        records.push({ kind: buf.readUInt8(at + 8), arrival: buf.readDoubleLE(at + 9), data });
      } else {
        // The header is intact, so the frame's extent is known: exactly this frame is damaged.
        damaged.push({ offset: at, length: end - at });
      }
      at = end;
      continue;
    }
    // Every position the loop stands at is where a frame could start (the file's start, the end
    // of a frame, or the next magic number after damage).
    if (couldBeCutHeader(buf, at)) {
      endBad(at);
      unfinished = { offset: at, length: buf.length - at };
      break;
    }
    if (badFrom < 0) badFrom = at;
    const next = buf.indexOf(FRAME_MAGIC, at + 1);
    at = next < 0 ? buf.length : next;
  }
  endBad(buf.length);
  return { records, damaged, unfinished };
}
