// A Lambda rule action's handler, the smallest useful one: it writes the event AWS IoT sent (the
// rule's SQL result: "The data ... is the result from the SQL statement") to the function's log
// group as one JSON line and returns it. Copy it to start a handler of your own: the Lambda action
// (components/rule/actions/lambda.ts) bundles any `functions/<name>.ts` that exports `handler`,
// and the local pipeline calls the same export in-process.

/** The event of a Lambda rule action: the SQL result, a JSON value (an object for `SELECT a, b`). */
export type RuleEvent = unknown;

/** At most this much of an event is logged (a CloudWatch Logs event holds up to 256 KB). */
const MAX_LOGGED_CHARS = 16_384;

export async function handler(event: RuleEvent): Promise<{ received: RuleEvent }> {
  const line = JSON.stringify({ received: event });
  console.log(line.length > MAX_LOGGED_CHARS ? `${line.slice(0, MAX_LOGGED_CHARS)}...` : line);
  return { received: event };
}
