// What the delivery stream counts: the summary's and the dashboard's delivery rows.

export interface DeliveryStats {
  /** Records acknowledged (journaled) since this process opened the stream. */
  recordsIn: number;
  /** Records found in the journal at open, left by a process that did not finish delivering. */
  recordsReplayed: number;
  recordsDelivered: number;
  errorRecordsDelivered: number;
  objectsWritten: number;
  bytesWritten: number;
  /** Journal fsyncs; recordsIn / fsyncs is the group-commit batch size. */
  fsyncs: number;
  /** Largest wait of a buffer's oldest record before its object was written, ms (DataFreshness). */
  maxFreshnessMs: number;
  /** Times the journal could not be written (a full disk): records then waited, unacknowledged. */
  journalStalls: number;
  /** Acknowledged records whose objects could not be written by the end; the next start delivers them. */
  recordsLeftInJournal: number;
  /**
   * Records whose buffer could not be written for a reason a retry would not change (not an I/O
   * error): they went to the error output instead (also counted in errorRecordsDelivered).
   */
  recordsFailedDelivery: number;
  /** Damaged stretches of journal skipped at replay (their segments are kept under quarantine/). */
  damagedRegions: number;
  damagedBytes: number;
}

export function emptyStats(): DeliveryStats {
  return {
    recordsIn: 0,
    recordsReplayed: 0,
    recordsDelivered: 0,
    errorRecordsDelivered: 0,
    objectsWritten: 0,
    bytesWritten: 0,
    fsyncs: 0,
    maxFreshnessMs: 0,
    journalStalls: 0,
    recordsLeftInJournal: 0,
    recordsFailedDelivery: 0,
    damagedRegions: 0,
    damagedBytes: 0,
  };
}
