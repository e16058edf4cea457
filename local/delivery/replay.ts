// Replay at open: every segment a process left behind is delivered (intact frames become
// objects), a damaged stretch is skipped and its segment kept under quarantine/ as evidence, and
// an unfinished last write, which was never acknowledged, is dropped.
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { shownPath } from "../../core/display";
import { syncDir } from "../storage/s3";
import { asError, isDeterministicFailure, JournalError, journalError } from "./errors";
import { scanSegment, type ByteRange } from "./journal-format";
import type { ObjectWriter } from "./object-writer";
import type { DeliveryStats } from "./stats";

/** A journal segment's file name: `segment-<n>.jnl`, in the framing of journal-format.ts. */
const SEGMENT = /^segment-(\d{12})\.jnl$/;

export function segmentFileName(no: number): string {
  return `segment-${String(no).padStart(12, "0")}.jnl`;
}

/** "1 damaged region of 37 bytes at offset 20,110" for a log line. */
function describeRanges(ranges: readonly ByteRange[]): string {
  const shown = ranges
    .slice(0, 3)
    .map((r) => `${r.length} bytes at offset ${r.offset.toLocaleString("en-US")}`);
  return shown.join(", ") + (ranges.length > 3 ? `, and ${ranges.length - 3} more` : "");
}

export interface ReplayOptions {
  readonly journalDir: string;
  /** The most record bytes one replayed object holds (the stream's buffer size). */
  readonly sizeLimit: number;
  readonly writer: ObjectWriter;
  readonly stats: DeliveryStats;
  readonly log: (line: string) => void;
}

/**
 * Delivers every segment of the journal folder and returns the highest segment number seen, so
 * that new segments follow it. Records that not even the error output can take stay in their
 * segment for the next start.
 */
export async function replayJournal(opts: ReplayOptions): Promise<number> {
  const { journalDir, stats, log } = opts;
  const entries = await fs.readdir(journalDir, { withFileTypes: true });
  const segments = entries
    .filter((e) => SEGMENT.test(e.name))
    .map((e) => ({ entry: e, no: Number(SEGMENT.exec(e.name)?.[1] ?? 0) }))
    .sort((a, b) => a.no - b.no);
  let last = 0;
  for (const { entry, no } of segments) {
    last = Math.max(last, no);
    const file = path.join(journalDir, entry.name);
    if (!entry.isFile()) {
      throw new JournalError(
        `${shownPath(file)} is ${entry.isDirectory() ? "a folder" : "not a regular file"} where a journal segment belongs; move it out of ${shownPath(journalDir)} and start again`,
      );
    }
    let buf: Buffer;
    try {
      buf = await fs.readFile(file);
    } catch (e) {
      throw journalError(e, `cannot read the journal segment ${shownPath(file)}`);
    }
    const scan = scanSegment(buf);
    const records = scan.records;
    if (records.length > 0) {
      stats.recordsReplayed += records.length;
      log(`delivery: replaying ${records.length} journaled record(s) from ${shownPath(file)}`);
    }
    // Replayed records keep their arrival time, so they land in the folder of their hour.
    let kept = 0;
    for (let i = 0; i < records.length;) {
      let bytes = 0;
      let j = i;
      while (j < records.length && (j === i || bytes + records[j].data.length <= opts.sizeLimit)) {
        bytes += records[j].data.length;
        j++;
      }
      try {
        await opts.writer.write(records.slice(i, j));
      } catch (e) {
        if (!isDeterministicFailure(e)) {
          throw journalError(
            e,
            `cannot deliver the ${records.length} record(s) journaled in ${shownPath(file)} (they stay there for the next start)`,
          );
        }
        // Not even the error output can take them (a refused error prefix): they stay in the
        // journal, and the stream starts all the same.
        kept += j - i;
        stats.recordsLeftInJournal += j - i;
        log(
          `delivery: cannot deliver ${j - i} journaled record(s) of ${shownPath(file)}, not even to the error output (${asError(e).message}); they stay in the journal`,
        );
      }
      i = j;
    }
    if (scan.unfinished) {
      log(
        `delivery: ${shownPath(file)}: dropped an unfinished last write (${describeRanges([scan.unfinished])}); it was never acknowledged`,
      );
    }
    if (kept > 0) continue;
    if (scan.damaged.length > 0) {
      const bytes = scan.damaged.reduce((n, r) => n + r.length, 0);
      stats.damagedRegions += scan.damaged.length;
      stats.damagedBytes += bytes;
      const aside = await quarantine(journalDir, file);
      log(
        `delivery: ${shownPath(file)}: skipped ${scan.damaged.length} damaged region(s) of the journal (${describeRanges(scan.damaged)}); ` +
          `${records.length} intact record(s) replayed; the segment is kept as ${shownPath(aside)}`,
      );
    } else {
      await fs.unlink(file);
    }
  }
  if (segments.length > 0) await syncDir(journalDir);
  return last;
}

/** Moves a segment with damaged frames aside, keeping the evidence; returns its new path. */
async function quarantine(journalDir: string, file: string): Promise<string> {
  const dir = path.join(journalDir, "quarantine");
  await fs.mkdir(dir, { recursive: true });
  let target = path.join(dir, path.basename(file));
  for (
    let n = 1;
    await fs.stat(target).then(
      () => true,
      () => false,
    );
    n++
  ) {
    target = path.join(dir, `${path.basename(file)}.${n}`);
  }
  await fs.rename(file, target);
  await syncDir(dir);
  return target;
}
