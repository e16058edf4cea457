// What a failed rule action reports to the rule's error action: the `failures` entry of the error
// action message, as the Error handling page documents it
// (https://docs.aws.amazon.com/iot/latest/developerguide/rule-error-handling.html): "failedAction
// The name of the action that failed to complete (for example, "S3Action")", "failedResource The
// name of the resource (for example, the name of an S3 bucket)", "errorMessage The description and
// explanation of the error".

/** One entry of the error action message's `failures`. */
export interface ActionFailureEntry {
  readonly failedAction: string;
  readonly failedResource: string;
  readonly errorMessage: string;
}

/**
 * An action that failed the way AWS IoT reports to the error action (a refused request, a
 * missing key, an endpoint that answered 500). Any other error (the local disk) is not the
 * action failing: the message is not acknowledged and the device sends it again.
 */
export class RuleActionFailure extends Error {
  constructor(
    readonly failedAction: string,
    readonly failedResource: string,
    errorMessage: string,
  ) {
    super(errorMessage);
    this.name = "RuleActionFailure";
  }

  /** The entry of the error action message. */
  entry(): ActionFailureEntry {
    return {
      failedAction: this.failedAction,
      failedResource: this.failedResource,
      errorMessage: this.message,
    };
  }
}

/**
 * The page's example errorMessage ends with where the message came from: "Message arrived on:
 * error/action, Action: s3, Bucket: ..., Key: ...". Every local failure ends the same way.
 */
export function arrivedOn(topic: string, action: string, details: string = ""): string {
  return `Message arrived on: ${topic}, Action: ${action}${details === "" ? "" : `, ${details}`}`;
}
