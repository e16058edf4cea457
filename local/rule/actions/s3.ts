// The S3 action, locally: each message's SQL result becomes one object of the stack's local bucket
// (`<stateDir>/s3/<bucket>/`), under the action's key template evaluated for the message. The
// local bucket refuses a key that would leave its folder (local/storage/s3.ts); that, like a
// failed PutObject in AWS, goes to the error action with the page's kind of message
// (https://docs.aws.amazon.com/iot/latest/developerguide/rule-error-handling.html: "Failed to put
// S3 object. The error received was ... Message arrived on: error/action, Action: s3, Bucket: ...,
// Key: ...").
import { RuleActionFailure, arrivedOn } from "../../../core/rule-actions/failure";
import type { S3ActionSpec } from "../../../core/rule-actions/s3";
import { ObjectKeyError, type LocalBucket } from "../../storage/s3";
import type { LocalAction, LocalActionInput } from "./context";

export class LocalS3Action implements LocalAction {
  /** Objects written. */
  written = 0;

  constructor(
    readonly id: string,
    private readonly spec: S3ActionSpec,
    private readonly bucket: LocalBucket,
  ) {}

  async execute(input: LocalActionInput): Promise<void> {
    const key = input.substitute(this.spec.key);
    try {
      await this.bucket.putObject(key, input.record);
    } catch (e) {
      // Only a key the bucket refuses is the action failing; a full disk withholds the PUBACK.
      if (!(e instanceof ObjectKeyError)) throw e;
      throw new RuleActionFailure(
        "S3Action",
        this.bucket.name,
        `Failed to put S3 object. The error received was ${e.message}. ${arrivedOn(input.topic, "s3", `Bucket: ${this.bucket.name}, Key: ${JSON.stringify(key)}`)}`,
      );
    }
    this.written++;
  }
}
