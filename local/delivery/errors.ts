// What the delivery stream throws, and how it tells a failure a retry may cure from one it will not.
import { environmentError, EnvironmentError, UserError } from "../../core/errors";

/** Another running process owns the stream's journal. */
export class DeliveryStreamBusyError extends UserError {}

/**
 * The journal cannot be opened or replayed: a full disk, a folder where a segment belongs, a file
 * that cannot be read. One line saying what and where; nothing journaled is touched.
 */
export class JournalError extends EnvironmentError {}

/** A record Firehose refuses at PutRecord (the caller's action fails). */
export class FirehoseRecordError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FirehoseRecordError";
  }
}

/**
 * The record could not be journaled (the stream is closing while the disk is full, or a write
 * failed): it is not acknowledged, and the publisher sends it again. Deliberately not a
 * FirehoseRecordError, which would send the message to the rule's error action instead.
 */
export class JournalUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "JournalUnavailableError";
  }
}

export const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));

/** A system error (full disk, permissions) as one JournalError line; anything else unchanged. */
export function journalError(e: unknown, doing: string): unknown {
  if (e instanceof UserError) return e;
  const env = environmentError(e, doing);
  return env ? new JournalError(env.message) : e;
}

/**
 * Whether writing a buffer failed for a reason that a retry will not change: anything but an I/O
 * error (an errno code such as ENOSPC or EIO, or DuckDB's "IO Error" and out-of-memory). A refused
 * key, a record the converter cannot take or a bug fail the same way at every retry and start.
 */
export function isDeterministicFailure(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === "string" && /^E[A-Z0-9]+$/.test(code)) return false;
  const message = e instanceof Error ? e.message : String(e);
  return !/IO Error|No space left|out of memory/i.test(message);
}
