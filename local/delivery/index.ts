// The local delivery stream (Firehose to the local bucket): what the pipeline, the rule engine
// and the lake writer use of it.
export {
  DEFAULT_MAX_PENDING_OBJECTS,
  DEFAULT_MAX_QUEUED_BYTES,
  LocalDeliveryStream,
  type DeliveryStreamOptions,
} from "./delivery-stream";
export {
  DeliveryStreamBusyError,
  FirehoseRecordError,
  isDeterministicFailure,
  JournalError,
  JournalUnavailableError,
} from "./errors";
export {
  objectBody,
  objectKey,
  oldestArrival,
  type BufferedRecord,
  type DeliveredObject,
  type ObjectLayout,
} from "./object-writer";
export { RECORD_OVERHEAD_BYTES } from "./record-buffer";
export type { DeliveryStats } from "./stats";
