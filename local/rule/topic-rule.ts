// One topic rule offline: its IoT SQL on each message, its actions run together on what the
// SELECT produced, and, when actions fail or the message cannot be evaluated, one error message
// per rule and message (naming every failed action) to its error action
// (https://docs.aws.amazon.com/iot/latest/developerguide/rule-error-handling.html).
import {
  compileRule,
  RuleEvaluationError,
  type CompiledRule,
  type MqttProperties,
  type RegistryLookup,
  type RuleInput,
  type RuleStatement,
  type ShadowLookup,
  type SqlValue,
} from "../../core/rule-sql";
import { ActionFailure, type ActionMessage, type LocalAction } from "./actions/action";

/** The message the rule's error action receives, as AWS IoT documents it. */
export interface RuleErrorMessage {
  readonly ruleName: string;
  readonly topic: string;
  readonly cloudwatchTraceId: string;
  readonly clientId: string;
  readonly base64OriginalPayload: string;
  readonly failures: readonly {
    readonly failedAction: string;
    readonly failedResource: string;
    readonly errorMessage: string;
  }[];
}

export interface RuleStats {
  /** Messages on a topic the rule's FROM filter matches. */
  onTopic: number;
  /** Messages whose WHERE held (or that had no WHERE): the actions ran. */
  matched: number;
  /** Messages the WHERE clause filtered out. */
  whereFalse: number;
  /** Action failures, each sent to the error action. */
  actionFailures: number;
  /** Messages the SQL could not be evaluated on (over a bound, unrepresentable), each sent to the error action. */
  evaluationErrors: number;
}

/** Who published: the broker's ClientIdentity has these fields; none for AWS IoT itself. */
export interface Publisher {
  readonly clientId?: string;
  /** The client certificate's id, which `principal()` returns. */
  readonly certificateId?: string;
}

/** What a matched message produced, for other local consumers (the analytics window). */
export type RuleOutputListener = (
  output: SqlValue,
  message: { readonly topic: string; readonly clientId: string; readonly receivedAt: number },
) => void;

export interface LocalTopicRuleOptions {
  readonly name: string;
  readonly statement: RuleStatement;
  readonly actions: readonly LocalAction[];
  readonly errorAction?: LocalAction;
  readonly registry: RegistryLookup;
  /** What get_thing_shadow() reads. @default none: the function answers Undefined */
  readonly shadow?: ShadowLookup;
  readonly accountId: string;
  readonly now: () => number;
  readonly uuid: () => string;
  readonly log: (line: string) => void;
}

/** What the error message's clientId says for a message AWS IoT itself published. */
const NO_CLIENT = "n/a";

export class LocalTopicRule {
  readonly stats: RuleStats = {
    onTopic: 0,
    matched: 0,
    whereFalse: 0,
    actionFailures: 0,
    evaluationErrors: 0,
  };
  /** Error messages that found no error action (`errorAction: none`) or whose error action failed. */
  errorsDropped = 0;
  readonly name: string;
  private readonly rule: CompiledRule;
  private readonly listeners: RuleOutputListener[] = [];
  private readonly errorListeners: ((message: RuleErrorMessage) => void)[] = [];

  constructor(private readonly opts: LocalTopicRuleOptions) {
    if (opts.actions.length === 0) throw new Error(`rule ${opts.name} has no action`);
    this.name = opts.name;
    this.rule = compileRule(opts.statement);
  }

  onOutput(listener: RuleOutputListener): void {
    this.listeners.push(listener);
  }

  /** Adds a consumer of every error message this rule produced (sent or not). */
  onError(listener: (message: RuleErrorMessage) => void): void {
    this.errorListeners.push(listener);
  }

  /**
   * Runs the rule on one message. Resolves when its actions have taken it (durably); rejects
   * only when an action or the error action failed in a way that must withhold the PUBACK.
   */
  async run(
    publisher: Publisher,
    topic: string,
    payload: Buffer,
    mqtt: MqttProperties | undefined,
    hops: number,
  ): Promise<void> {
    await this.start(publisher, topic, payload, mqtt, hops);
  }

  /**
   * {@link run} without a promise for a message the rule does not take (its topic or WHERE): the
   * SQL is evaluated at once, and only a match (or an error to report) returns the work to wait
   * for. The engine runs every rule on every publish, and most rules match few messages. Throws
   * what `run` would reject with for an unexpected evaluation failure.
   */
  start(
    publisher: Publisher,
    topic: string,
    payload: Buffer,
    mqtt: MqttProperties | undefined,
    hops: number,
  ): Promise<void> | undefined {
    const { name, log } = this.opts;
    const clientId = publisher.clientId;
    const who = clientId ?? "AWS IoT";
    const receivedAt = this.opts.now();
    const input = new MessageInput(
      payload,
      topic,
      clientId,
      receivedAt,
      this.opts.uuid,
      publisher.certificateId,
      this.opts.accountId,
      this.opts.registry,
      this.opts.shadow,
      name,
      mqtt,
    );
    let result;
    try {
      result = this.rule.evaluate(input);
    } catch (e) {
      if (!(e instanceof RuleEvaluationError)) throw e;
      this.stats.onTopic++;
      this.stats.evaluationErrors++;
      log(
        `rule ${name}: message from ${who} on ${topic} not evaluated: ${e.message}; error action run with the original payload`,
      );
      const first = this.opts.actions[0];
      return this.runErrorAction(input, hops, [
        {
          failedAction: first.failedAction,
          failedResource: first.resource,
          errorMessage: `The rule's SQL could not be evaluated on this message: ${e.message}. Message arrived on: ${topic}, Action: ${first.kind}`,
        },
      ]);
    }
    if (!result.matched) {
      if (result.reason === "where") {
        this.stats.onTopic++;
        this.stats.whereFalse++;
      }
      return undefined;
    }
    this.stats.onTopic++;
    this.stats.matched++;
    const message = new MatchedMessage(
      name,
      topic,
      clientId,
      payload,
      result,
      receivedAt,
      mqtt,
      hops,
      input,
    );
    return this.act(message, who);
  }

  /** Runs the actions on a matched message, then its error action or its output's listeners. */
  private async act(message: MatchedMessage, who: string): Promise<void> {
    const { topic, clientId, input, hops, receivedAt } = message;
    const actions = this.opts.actions;
    let failures: RuleErrorMessage["failures"][number][] | undefined;
    if (actions.length === 1) {
      // The telemetry rule's one action, on the publish path: no settling of a list.
      try {
        await actions[0].run(message);
      } catch (e) {
        (failures ??= []).push(this.failure(actions[0], e, who, topic));
      }
    } else {
      // AWS runs a rule's actions independently: each gets the message, failures are gathered.
      const outcomes = await Promise.allSettled(actions.map((a) => a.run(message)));
      for (const [i, outcome] of outcomes.entries()) {
        if (outcome.status === "rejected") {
          (failures ??= []).push(this.failure(actions[i], outcome.reason, who, topic));
        }
      }
    }
    if (failures !== undefined) {
      await this.runErrorAction(input, hops, failures);
      return;
    }
    // Read only when someone listens: for `SELECT *, …` the output object is built on demand.
    if (this.listeners.length === 0) return;
    const output = message.output;
    if (output === undefined) return;
    for (const listen of this.listeners)
      listen(output, { topic, clientId: clientId ?? NO_CLIENT, receivedAt });
  }

  /** One failed action, as the error message names it; rethrows what is not an ActionFailure. */
  private failure(action: LocalAction, e: unknown, who: string, topic: string) {
    if (!(e instanceof ActionFailure)) throw e;
    this.stats.actionFailures++;
    this.opts.log(
      `rule ${this.name}: ${action.failedAction} failed for ${who} on ${topic}: ${e.message}; error action run`,
    );
    return {
      failedAction: action.failedAction,
      failedResource: e.resource,
      errorMessage: `${e.message}. Message arrived on: ${topic}, Action: ${action.kind}`,
    };
  }

  private async runErrorAction(
    input: RuleInput,
    hops: number,
    failures: RuleErrorMessage["failures"],
  ): Promise<void> {
    const { name, log } = this.opts;
    const payload = Buffer.isBuffer(input.payload) ? input.payload : Buffer.from(input.payload);
    const error: RuleErrorMessage = {
      ruleName: name,
      topic: input.topic,
      cloudwatchTraceId: input.traceId ?? "",
      clientId: input.clientId ?? NO_CLIENT,
      base64OriginalPayload: payload.toString("base64"),
      failures,
    };
    for (const listen of this.errorListeners) listen(error);
    const action = this.opts.errorAction;
    if (action === undefined) {
      this.errorsDropped++;
      log(
        `rule ${name}: no error action: the failure of ${failures.map((f) => f.failedAction).join(", ")} on ${input.topic} is dropped`,
      );
      return;
    }
    const record = Buffer.from(JSON.stringify(error));
    // The error action's templates see the error message as the payload.
    const errorInput: RuleInput = {
      topic: input.topic,
      clientId: input.clientId,
      timestamp: input.timestamp,
      newuuid: input.newuuid,
      principal: input.principal,
      traceId: input.traceId,
      accountId: input.accountId,
      registry: input.registry,
      shadow: input.shadow,
      ruleName: input.ruleName,
      mqtt: input.mqtt,
      payload: record,
    };
    try {
      await action.run({
        ruleName: name,
        topic: input.topic,
        ...(input.clientId === undefined ? {} : { clientId: input.clientId }),
        payload: record,
        record,
        output: JSON.parse(record.toString()) as SqlValue,
        receivedAt: input.timestamp,
        traceId: error.cloudwatchTraceId,
        hops,
        input: errorInput,
      });
    } catch (e) {
      if (!(e instanceof ActionFailure)) throw e;
      // AWS logs a failed error action; nothing further runs.
      this.errorsDropped++;
      log(
        `rule ${name}: the error action ${action.failedAction} failed too: ${e.message}; the error message is dropped`,
      );
    }
  }
}

/**
 * One message as a rule's SQL sees it. Its trace id (`traceid()`, the error message's
 * cloudwatchTraceId) is made the first time it is read: a rule whose WHERE is false, the usual
 * case for an alert rule, never needs one (a UUID per rule and message was 5 % of the pipeline's
 * allocations, issue 28).
 */
class MessageInput implements RuleInput {
  private trace: string | undefined;
  constructor(
    readonly payload: Buffer,
    readonly topic: string,
    readonly clientId: string | undefined,
    readonly timestamp: number,
    readonly newuuid: () => string,
    readonly principal: string | undefined,
    readonly accountId: string,
    readonly registry: RegistryLookup,
    readonly shadow: ShadowLookup | undefined,
    readonly ruleName: string,
    /** What an MQTT 5 publish carried, for get_mqtt_property() and get_user_properties(). */
    readonly mqtt: MqttProperties | undefined,
  ) {}

  get traceId(): string {
    return (this.trace ??= this.newuuid());
  }
}

/**
 * A matched message as its actions receive it: made on every publish, so a class (its `output`
 * getter on the prototype, read only by actions that need the SELECT's value).
 */
class MatchedMessage implements ActionMessage {
  constructor(
    readonly ruleName: string,
    readonly topic: string,
    readonly clientId: string | undefined,
    readonly payload: Buffer,
    private readonly result: { readonly record: Buffer; readonly output: SqlValue | undefined },
    readonly receivedAt: number,
    readonly mqtt: MqttProperties | undefined,
    readonly hops: number,
    readonly input: MessageInput,
  ) {}

  get traceId(): string {
    return this.input.traceId;
  }

  get record(): Buffer {
    return this.result.record;
  }

  get output(): SqlValue | undefined {
    return this.result.output;
  }
}
