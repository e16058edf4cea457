// The Firehose action offline: the record and the action's separator into the local delivery
// stream, which resolves once the record is durable
// (https://docs.aws.amazon.com/iot/latest/developerguide/kinesis-firehose-rule-action.html).
import { FIREHOSE_RECORD_SEPARATOR } from "../../../core/delivery";
import { FirehoseRecordError } from "../../delivery";
import { ActionFailure, type LocalAction } from "./action";

/** The action on one stream; `put` is the stream's PutRecord. */
export function firehoseAction(
  streamName: string,
  put: (record: Buffer) => Promise<void>,
): LocalAction {
  const separator = Buffer.from(FIREHOSE_RECORD_SEPARATOR);
  return {
    kind: "firehose",
    failedAction: "FirehoseAction",
    resource: streamName,
    async run(message) {
      try {
        await put(Buffer.concat([message.record, separator]));
      } catch (e) {
        // Only a refusal by Firehose is the action failing; a journal I/O error must withhold
        // the PUBACK.
        if (!(e instanceof FirehoseRecordError)) throw e;
        throw new ActionFailure(
          `Failed to send message to Firehose stream ${streamName}: ${e.message}`,
          streamName,
        );
      }
    },
  };
}
