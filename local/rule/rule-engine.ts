// The local topic rule: the stack's IoT SQL run on every accepted publish, its Firehose action
// (record + the action's separator) and, when that action fails or the message cannot be
// evaluated, the error action in AWS's shape with the original payload.
import { randomUUID } from "node:crypto";
import { FIREHOSE_RECORD_SEPARATOR } from "../../core/delivery";
import {
  compileRule,
  FUNCTIONS,
  parsedOnlyFunctions,
  RuleEvaluationError,
  type CompiledRule,
  type MqttProperties,
  type RegistryLookup,
  type ShadowLookup,
  type RuleStatement,
  type SqlValue,
} from "../../core/rule-sql";
import { planOf, type PipelinePlan } from "../../core/plan";
import type { StackConfig } from "../../core/stack-config";
import { LOCAL_ACCOUNT_ID } from "../broker/authorizer";
import { FirehoseRecordError } from "../delivery";

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

export interface RuleEngineOptions {
  /** The Firehose action: resolves once the record is durable (then the broker may PUBACK). */
  readonly firehosePut: (record: Buffer) => Promise<void>;
  /** The error action: receives the error message as one JSON line. */
  readonly errorAction: (message: Buffer) => Promise<void>;
  readonly log?: (line: string) => void;
  readonly now?: () => number;
  readonly uuid?: () => string;
  /** What get_registry_data() answers; by default the stack config's registry. */
  readonly registry?: RegistryLookup;
  /** What get_thing_shadow() reads: in the pipeline, the local Device Shadow service. */
  readonly shadow?: ShadowLookup;
}

/** Who published: the broker's ClientIdentity has these fields. */
export interface Publisher {
  readonly clientId: string;
  /** The client certificate's id, which `principal()` returns. */
  readonly certificateId?: string;
}

/** What a matched message produced, for other local consumers (the analytics window). */
export type RuleOutputListener = (
  output: SqlValue,
  message: { readonly topic: string; readonly clientId: string; readonly receivedAt: number },
) => void;

export interface RuleStats {
  /** Messages on a topic the rule's FROM filter matches. */
  onTopic: number;
  /** Messages whose WHERE held (or that had no WHERE): the actions ran. */
  matched: number;
  /** Messages the WHERE clause filtered out. */
  whereFalse: number;
  /** Firehose action failures, each sent to the error action. */
  actionFailures: number;
  /** Messages the SQL could not be evaluated on (over a bound, unrepresentable), each sent to the error action. */
  evaluationErrors: number;
}

/**
 * The registry as the deployed program registers it (components/registry/thing-registry.ts):
 * things of the stack's thing type, without attributes of their own, each in its group. The
 * thing id AWS assigns at creation is not known locally and is left out.
 */
export function registryFromConfig(config: StackConfig): RegistryLookup {
  const arn = (type: string, name: string) =>
    `arn:aws:iot:${config.region}:${LOCAL_ACCOUNT_ID}:${type}/${name}`;
  const things = new Map(config.things.map((t) => [t.name, t]));
  return (api, name): SqlValue | undefined => {
    const thing = things.get(name);
    if (thing === undefined) return undefined;
    if (api === "DescribeThing") {
      return {
        defaultClientId: name,
        thingName: name,
        thingArn: arn("thing", name),
        thingTypeName: config.thingType.name,
        attributes: {},
        version: 1,
      };
    }
    return { thingGroups: [{ groupName: thing.group, groupArn: arn("thinggroup", thing.group) }] };
  };
}

export class LocalRuleEngine {
  readonly stats: RuleStats = {
    onTopic: 0,
    matched: 0,
    whereFalse: 0,
    actionFailures: 0,
    evaluationErrors: 0,
  };
  readonly statement: RuleStatement;
  private readonly rule: CompiledRule;
  private readonly listeners: RuleOutputListener[] = [];
  private readonly errorListeners: ((message: RuleErrorMessage) => void)[] = [];
  private readonly now: () => number;
  private readonly uuid: () => string;
  private readonly log: (line: string) => void;
  private readonly registry: RegistryLookup;
  private readonly separator = Buffer.from(FIREHOSE_RECORD_SEPARATOR);

  private readonly config: StackConfig;

  /** Runs the stack's rule: a plan's statement, or a config's, planned here. */
  constructor(
    stack: StackConfig | PipelinePlan,
    private readonly opts: RuleEngineOptions,
  ) {
    const plan = planOf(stack);
    const config = plan.config;
    this.config = config;
    this.statement = plan.rule.statement;
    this.rule = compileRule(this.statement);
    this.now = opts.now ?? Date.now;
    this.uuid = opts.uuid ?? randomUUID;
    this.log = opts.log ?? (() => undefined);
    this.registry = opts.registry ?? registryFromConfig(config);
    for (const name of parsedOnlyFunctions(this.statement)) {
      this.log(
        `rule ${config.rule.name}: ${name}() ${FUNCTIONS[name].reason}; locally it evaluates to Undefined`,
      );
    }
  }

  /** Adds a consumer of every message the error action received (the local dashboard's list). */
  onError(listener: (message: RuleErrorMessage) => void): void {
    this.errorListeners.push(listener);
  }

  /** Adds a consumer of every matched message's SELECT output (called after the actions). */
  onOutput(listener: RuleOutputListener): void {
    this.listeners.push(listener);
  }

  /**
   * Runs the rule on one accepted publish. Resolves when its actions have taken the message
   * (durably); rejects only when neither the action nor the error action could, so that the
   * broker withholds the PUBACK and the device sends the message again. A message the SQL cannot
   * be evaluated on goes to the error action and is acknowledged: sending it again cannot help.
   */
  async onPublish(
    from: Publisher | string,
    topic: string,
    payload: Buffer,
    mqtt?: MqttProperties,
  ): Promise<void> {
    const publisher = typeof from === "string" ? { clientId: from } : from;
    const clientId = publisher.clientId;
    const receivedAt = this.now();
    const traceId = this.uuid();
    let result;
    try {
      result = this.rule.evaluate({
        payload,
        topic,
        clientId,
        timestamp: receivedAt,
        newuuid: this.uuid,
        principal: publisher.certificateId,
        traceId,
        accountId: LOCAL_ACCOUNT_ID,
        registry: this.registry,
        shadow: this.opts.shadow,
        ruleName: this.config.rule.name,
        // What an MQTT 5 publish carried, for get_mqtt_property() and get_user_properties().
        mqtt,
      });
    } catch (e) {
      if (!(e instanceof RuleEvaluationError)) throw e;
      this.stats.onTopic++;
      this.stats.evaluationErrors++;
      this.log(
        `rule ${this.config.rule.name}: message from ${clientId} on ${topic} not evaluated: ${e.message}; error action run with the original payload`,
      );
      await this.runErrorAction(
        topic,
        clientId,
        traceId,
        payload,
        `The rule's SQL could not be evaluated on this message: ${e.message}. Message arrived on: ${topic}, Action: firehose`,
      );
      return;
    }
    if (!result.matched) {
      if (result.reason === "where") {
        this.stats.onTopic++;
        this.stats.whereFalse++;
      }
      return;
    }
    this.stats.onTopic++;
    this.stats.matched++;
    const record = Buffer.concat([result.record, this.separator]);
    try {
      await this.opts.firehosePut(record);
    } catch (e) {
      // Only a refusal by Firehose is the action failing; a journal I/O error must withhold the PUBACK.
      if (!(e instanceof FirehoseRecordError)) throw e;
      this.stats.actionFailures++;
      this.log(
        `rule ${this.config.rule.name}: Firehose action failed for ${clientId} on ${topic}: ${e.message}; error action run`,
      );
      await this.runErrorAction(
        topic,
        clientId,
        traceId,
        payload,
        `Failed to send message to Firehose stream ${this.config.delivery.streamName}: ${e.message}. Message arrived on: ${topic}, Action: firehose`,
      );
      return;
    }
    // Read only when someone listens: for `SELECT *, …` the output object is built on demand.
    if (this.listeners.length === 0) return;
    const output = result.output;
    if (output === undefined) return;
    for (const listen of this.listeners) listen(output, { topic, clientId, receivedAt });
  }

  private async runErrorAction(
    topic: string,
    clientId: string,
    traceId: string,
    payload: Buffer,
    errorMessage: string,
  ): Promise<void> {
    const message: RuleErrorMessage = {
      ruleName: this.config.rule.name,
      topic,
      cloudwatchTraceId: traceId,
      clientId,
      base64OriginalPayload: payload.toString("base64"),
      failures: [
        {
          failedAction: "FirehoseAction",
          failedResource: this.config.delivery.streamName,
          errorMessage,
        },
      ],
    };
    await this.opts.errorAction(Buffer.from(`${JSON.stringify(message)}\n`));
    for (const listen of this.errorListeners) listen(message);
  }
}
