// The rule actions the local pipeline runs beside Firehose, one per file, and how a rule runs
// them: all on each matched message, their failures gathered into the one error action message
// AWS sends per rule and message ("A single message is generated per rule and message. For
// example, if two rule actions in the same rule fail, the error action receives one message that
// contains both errors": https://docs.aws.amazon.com/iot/latest/developerguide/rule-error-handling.html).
import { RuleActionFailure, type ActionFailureEntry } from "../../../core/rule-actions/failure";
import type { LocalAction, LocalActionInput } from "./context";

export * from "./context";
export * from "./http";
export * from "./lambda";
export * from "./recorded";
export * from "./request-log";
export * from "./s3";

/**
 * Runs every action on one message. Resolves with the failures to report to the error action
 * (none when all succeeded); rejects, once all have settled, when one failed in a way that must
 * withhold the acknowledgement (the local disk), so that the device sends the message again.
 */
export async function runLocalActions(
  actions: readonly LocalAction[],
  input: LocalActionInput,
): Promise<ActionFailureEntry[]> {
  const results = await Promise.allSettled(actions.map((a) => a.execute(input)));
  const failures: ActionFailureEntry[] = [];
  for (const r of results) {
    if (r.status === "fulfilled") continue;
    if (r.reason instanceof RuleActionFailure) failures.push(r.reason.entry());
    else throw r.reason;
  }
  return failures;
}
