// The Lambda action, locally: the function's handler (the same `functions/<name>.ts` the program
// bundles) is loaded once and called in-process with the event AWS IoT would send, the rule's SQL
// result. "AWS IoT invokes Lambda functions asynchronously"
// (https://docs.aws.amazon.com/iot/latest/developerguide/lambda-rule-action.html): the action
// succeeds once the event is accepted, so the message is acknowledged without waiting for the
// function; what fails the action, and goes to the error action, is the invocation itself (here:
// a handler that cannot be loaded or exports no `handler`). A function that throws or runs past
// its timeout is the function's error, as in Lambda: logged and counted, retried twice as Lambda
// retries asynchronous invocations
// (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html), never sent
// to the rule's error action.
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { lambdaFunctionName, type LambdaParams } from "../../../core/topic-rules/actions/lambda";
import { PROJECT_DIR } from "../../../core/project";
import { withTimeout } from "../../../core/timeout";
import { LOCAL_ACCOUNT_ID } from "../../broker/authorizer";
import { ActionFailure, type ActionMessage, type LocalActionFactory } from "./action";

/** Lambda's retries of a failed asynchronous invocation: "two more times". */
export const LAMBDA_ASYNC_RETRIES = 2;
/** The most events running at once; a burst past it waits (the device's PUBACK with it). */
export const LAMBDA_LOCAL_MAX_IN_FLIGHT = 64;

type Handler = (event: unknown, context: Record<string, unknown>) => unknown;

export interface LocalLambdaOptions {
  /** The function's ARN as the rule names it (the error message's failedResource). */
  readonly functionArn: string;
  /** Where handler paths are relative to. @default the project */
  readonly baseDir?: string;
  readonly log?: (line: string) => void;
}

/** The function's figures: events accepted, runs that succeeded, events that failed every try. */
export interface LocalLambdaStats {
  invoked: number;
  succeeded: number;
  functionErrors: number;
  retries: number;
}

/** The Lambda action's executor, for a rule of the local engine. */
export class LocalLambdaAction {
  readonly kind = "lambda";
  readonly failedAction = "LambdaAction";
  readonly resource: string;
  readonly stats: LocalLambdaStats = { invoked: 0, succeeded: 0, functionErrors: 0, retries: 0 };
  private handler?: Promise<Handler>;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly params: LambdaParams,
    private readonly opts: LocalLambdaOptions,
  ) {
    this.resource = opts.functionArn;
  }

  private load(): Promise<Handler> {
    this.handler ??= (async () => {
      const file = path.resolve(this.opts.baseDir ?? PROJECT_DIR, this.params.handler);
      const mod = (await import(pathToFileURL(file).href)) as {
        handler?: unknown;
        default?: { handler?: unknown };
      };
      const h = mod.handler ?? mod.default?.handler;
      if (typeof h !== "function") {
        throw new Error(`${this.params.handler} exports no handler function`);
      }
      return h as Handler;
    })();
    return this.handler;
  }

  async run(m: ActionMessage): Promise<void> {
    let handler: Handler;
    try {
      handler = await this.load();
    } catch (e) {
      // Loaded once: a fixed file is picked up by the next run.
      throw new ActionFailure(
        `Failed to invoke lambda function. Received Server error from Lambda: the handler ${this.params.handler} cannot be loaded (${(e as Error).message})`,
        this.opts.functionArn,
      );
    }
    while (this.inFlight.size >= LAMBDA_LOCAL_MAX_IN_FLIGHT) await Promise.race(this.inFlight);
    this.stats.invoked++;
    const event = lambdaEvent(m.record);
    const run = this.invoke(handler, event, m.topic).finally(() => this.inFlight.delete(run));
    this.inFlight.add(run);
  }

  private async invoke(handler: Handler, event: unknown, topic: string): Promise<void> {
    const timeoutMs = this.params.timeoutSeconds * 1000;
    for (let attempt = 0; attempt <= LAMBDA_ASYNC_RETRIES; attempt++) {
      if (attempt > 0) this.stats.retries++;
      try {
        await withTimeout(
          Promise.resolve().then(() =>
            handler(event, { functionName: path.basename(this.params.handler, ".ts") }),
          ),
          timeoutMs,
          `Task timed out after ${this.params.timeoutSeconds.toFixed(2)} seconds`,
        );
        this.stats.succeeded++;
        return;
      } catch (e) {
        this.opts.log?.(
          `lambda ${this.opts.functionArn}: the function failed on a message from ${topic} (attempt ${attempt + 1} of ${LAMBDA_ASYNC_RETRIES + 1}): ${(e as Error).message}`,
        );
      }
    }
    this.stats.functionErrors++;
  }

  /** Waits for every event accepted so far to finish (a stopping pipeline). */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }
}

/** The event: the SQL result as its JSON value; a result that is not JSON, as its text. */
export function lambdaEvent(record: Buffer): unknown {
  const text = record.toString("utf8");
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export const localLambda: LocalActionFactory<"lambda"> = (spec, services, ctx) =>
  new LocalLambdaAction(spec.params, {
    // The ARN the program gives the function (components/rule/actions/lambda.ts), locally.
    functionArn: `arn:aws:lambda:${services.plan.region}:${LOCAL_ACCOUNT_ID}:function:${lambdaFunctionName(ctx.ruleName, spec.params.handler)}`,
    log: services.log,
  });
