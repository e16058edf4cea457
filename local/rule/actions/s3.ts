// The S3 action, locally: each message's SQL result becomes one object of the stack's local bucket
// (`<stateDir>/s3/<bucket>/`, the bucket the stack's Firehose delivers to), under the action's key
// template filled in for the message. The local bucket refuses a key that would leave its folder
// (local/storage/s3.ts); that, like a failed PutObject in AWS, goes to the error action with the
// page's kind of message ("Failed to put S3 object. The error received was ... Bucket: ...,
// Key: ...": https://docs.aws.amazon.com/iot/latest/developerguide/rule-error-handling.html).
import { compileTemplate } from "../../../core/topic-rules/template";
import { LocalBucket, localBucketName, ObjectKeyError } from "../../storage/s3";
import { ActionFailure, required, substitute, type LocalActionFactory } from "./action";

export const localS3: LocalActionFactory<"s3"> = (spec, services, ctx) => {
  const stateDir = required(services.stateDir, "the state folder (the local bucket)", ctx);
  const bucket = new LocalBucket(stateDir, localBucketName(services.plan.config));
  const key = compileTemplate(spec.params.key);
  return {
    kind: "s3",
    failedAction: "S3Action",
    resource: bucket.name,
    async run(m) {
      const k = substitute(key, m);
      try {
        await bucket.putObject(k, m.record);
      } catch (e) {
        // Only a key the bucket refuses is the action failing; a full disk withholds the PUBACK.
        if (!(e instanceof ObjectKeyError)) throw e;
        throw new ActionFailure(
          `Failed to put S3 object. The error received was ${e.message}. Bucket: ${bucket.name}, Key: ${JSON.stringify(k)}`,
          bucket.name,
        );
      }
    },
  };
};
