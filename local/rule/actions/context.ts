// What a local rule action runs on: one matched message and its SQL result, and how to evaluate
// a substitution template in an action parameter for it (the rule engine's IoT SQL, as the
// Substitution templates page defines them:
// https://docs.aws.amazon.com/iot/latest/developerguide/iot-substitution-templates.html).
import { RuleActionFailure, type ActionFailureEntry } from "../../../core/rule-actions/failure";
import type { Value } from "../../../core/rule-sql";

export interface LocalActionInput {
  readonly ruleName: string;
  readonly topic: string;
  readonly clientId: string;
  /** The SQL result (Undefined for a `SELECT VALUE` of Undefined). */
  readonly output: Value;
  /** What the actions receive: the SQL result's bytes ("The data ... is the result from the SQL statement"). */
  readonly record: Buffer;
  /** A parameter with its `${expression}` templates evaluated for this message. */
  substitute(template: string): string;
}

/** A rule action the local pipeline runs. */
export interface LocalAction {
  /** The action's id in its rule. */
  readonly id: string;
  /**
   * Runs the action on one message: resolves once what it did is durable (or sent); rejects with
   * RuleActionFailure for the failures AWS reports to the error action, with anything else when
   * the message must not be acknowledged (the local disk failed).
   */
  execute(input: LocalActionInput): Promise<void>;
  /** Waits for work the action finishes after acknowledging (a Lambda function's run). */
  drain?(): Promise<void>;
  close?(): Promise<void>;
}

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
