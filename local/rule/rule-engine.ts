// The local rules engine: every topic rule of the stack run on every accepted publish. The
// telemetry rule first, with its Firehose action (record + the action's separator) and its error
// action in AWS's shape with the original payload; then the stack's further rules (`rules`), each
// action run by its executor (./actions/). A message AWS IoT itself publishes (a republish) is
// fed to the rules too, without a client.
import { randomUUID } from "node:crypto";
import {
  FUNCTIONS,
  parsedOnlyFunctions,
  type MqttProperties,
  type RegistryLookup,
  type RuleStatement,
  type SqlValue,
} from "../../core/rule-sql";
import { planOf, type PipelinePlan } from "../../core/plan";
import type { StackConfig } from "../../core/stack-config";
import { LOCAL_ACCOUNT_ID } from "../broker/authorizer";
import type { LocalAction, LocalActionServices, ServicePublish } from "./actions/action";
import { ruleErrorLogGroupName } from "../../core/topic-rules/actions/cloudwatch-logs";
import { cloudwatchLogsSink } from "./actions/cloudwatch-logs";
import { firehoseAction } from "./actions/firehose";
import { localAction, LocalHttpAction, LocalLambdaAction, RequestLogs } from "./actions";
import {
  LocalTopicRule,
  type Publisher,
  type RuleOutputListener,
  type RuleStats,
} from "./topic-rule";

export type { Publisher, RuleErrorMessage, RuleOutputListener, RuleStats } from "./topic-rule";

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
  /**
   * What the further rules' actions use: the run's state folder, the local CloudWatch, and the
   * broker for republish (`publish`: LocalBroker.publishAsService; the engine runs the rules on
   * the message itself). Needed only by a stack with `rules`.
   */
  readonly services?: Partial<Pick<LocalActionServices, "stateDir" | "cloudwatch">> & {
    readonly publish?: (message: Omit<ServicePublish, "hops">) => Promise<void>;
  };
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
  /** The telemetry rule's figures (the pipeline's summary and alarms read them). */
  readonly stats: RuleStats;
  /** The telemetry rule's statement. */
  readonly statement: RuleStatement;
  /** Every rule, the telemetry rule first. */
  readonly rules: readonly LocalTopicRule[];
  /** The requests the SNS, SQS and DynamoDBv2 actions recorded (with a state folder). */
  readonly requests?: RequestLogs;
  private readonly telemetry: LocalTopicRule;
  /** The further rules' actions, for `drain`. */
  private readonly actions: LocalAction[] = [];
  private readonly log: (line: string) => void;

  /** Runs the stack's rules: a plan's, or a config's, planned here. */
  constructor(stack: StackConfig | PipelinePlan, opts: RuleEngineOptions) {
    const plan = planOf(stack);
    const config = plan.config;
    this.statement = plan.rule.statement;
    const now = opts.now ?? Date.now;
    const uuid = opts.uuid ?? randomUUID;
    const log = opts.log ?? (() => undefined);
    this.log = log;
    const registry = opts.registry ?? registryFromConfig(config);
    const common = { registry, accountId: LOCAL_ACCOUNT_ID, now, uuid, log };
    const publish = opts.services?.publish;
    const stateDir = opts.services?.stateDir;
    this.requests = stateDir === undefined ? undefined : new RequestLogs(stateDir, plan.stack);
    const services: LocalActionServices = {
      plan,
      log,
      now,
      ...(stateDir === undefined ? {} : { stateDir }),
      ...(this.requests === undefined ? {} : { requests: this.requests }),
      ...(opts.services?.cloudwatch === undefined ? {} : { cloudwatch: opts.services.cloudwatch }),
      ...(publish === undefined
        ? {}
        : {
            // The broker delivers to subscribers; the rules see it as a message from AWS IoT.
            publish: async (m: ServicePublish) => {
              const { hops, ...rest } = m;
              await publish(rest);
              await this.onServicePublish(
                m.topic,
                m.payload,
                m.properties as MqttProperties | undefined,
                hops,
              );
            },
          }),
    };
    this.telemetry = new LocalTopicRule({
      ...common,
      name: plan.rule.name,
      statement: plan.rule.statement,
      actions: [firehoseAction(config.delivery.streamName, opts.firehosePut)],
      // Locally the telemetry rule's CloudWatch Logs error action writes where the caller says.
      errorAction: cloudwatchLogsSink(ruleErrorLogGroupName(config.rule.name), opts.errorAction),
    });
    this.stats = this.telemetry.stats;
    const further = plan.rules.filter((r) => {
      if (!r.enabled) log(`rule ${r.name}: disabled (enabled: false); it does not run`);
      return r.enabled;
    });
    this.rules = [
      this.telemetry,
      ...further.map(
        (r) =>
          new LocalTopicRule({
            ...common,
            name: r.name,
            statement: r.statement,
            actions: r.actions.map((a, i) =>
              this.built(
                localAction(a, services, {
                  ruleName: r.name,
                  id: `${a.kind}-${i}`,
                  isErrorAction: false,
                }),
              ),
            ),
            ...(r.errorAction === undefined
              ? {}
              : {
                  errorAction: this.built(
                    localAction(r.errorAction, services, {
                      ruleName: r.name,
                      id: "errors",
                      isErrorAction: true,
                    }),
                  ),
                }),
          }),
      ),
    ];
    for (const [i, statement] of [
      plan.rule.statement,
      ...further.map((r) => r.statement),
    ].entries()) {
      for (const name of parsedOnlyFunctions(statement)) {
        log(
          `rule ${this.rules[i].name}: ${name}() ${FUNCTIONS[name].reason}; locally it evaluates to Undefined`,
        );
      }
    }
  }

  private built(action: LocalAction): LocalAction {
    this.actions.push(action);
    return action;
  }

  /**
   * The figures of the further rules' Lambda and HTTP actions, summed per kind, for the run's
   * summary: what they did after the rule handed them the message.
   */
  actionFigures(): {
    readonly lambda?: { invoked: number; succeeded: number; functionErrors: number };
    readonly http?: { sent: number; failed: number; retries: number; refusedUnconfirmed: number };
  } {
    const lambdas = this.actions.filter(
      (a): a is LocalLambdaAction => a instanceof LocalLambdaAction,
    );
    const https = this.actions.filter((a): a is LocalHttpAction => a instanceof LocalHttpAction);
    const sum = <T extends object>(xs: readonly T[]): T | undefined =>
      xs.length === 0
        ? undefined
        : xs.reduce(
            (acc, x) =>
              Object.fromEntries(
                Object.entries(x).map(([k, v]) => [
                  k,
                  ((acc as Record<string, number>)[k] ?? 0) + (v as number),
                ]),
              ) as T,
            {} as T,
          );
    return {
      ...(lambdas.length === 0 ? {} : { lambda: sum(lambdas.map((a) => a.stats)) }),
      ...(https.length === 0 ? {} : { http: sum(https.map((a) => a.stats)) }),
    };
  }

  /** Waits for what the actions finish after acknowledging (Lambda runs), when the run stops. */
  async drain(): Promise<void> {
    await Promise.all(this.actions.map((a) => a.drain?.()));
  }

  /** Adds a consumer of every telemetry-rule match's SELECT output (called after the actions). */
  onOutput(listener: RuleOutputListener): void {
    this.telemetry.onOutput(listener);
  }

  /** Each rule's figures, by rule name. */
  ruleStats(): Record<string, RuleStats> {
    return Object.fromEntries(this.rules.map((r) => [r.name, r.stats]));
  }

  /**
   * Runs every rule on one accepted publish. Resolves when their actions have taken the message
   * (durably); rejects only when an action and the error action could not, so that the broker
   * withholds the PUBACK and the device sends the message again. A message the SQL cannot be
   * evaluated on goes to the error action and is acknowledged: sending it again cannot help.
   */
  onPublish(
    from: Publisher | string,
    topic: string,
    payload: Buffer,
    mqtt?: MqttProperties,
  ): Promise<void> {
    const publisher = typeof from === "string" ? { clientId: from } : from;
    return this.runAll(publisher, topic, payload, mqtt, 0);
  }

  /**
   * Runs every rule on a message AWS IoT itself published (a republish): no client, so
   * clientid() is "n/a" and principal() Undefined; `hops` counts the republishes that led here
   * (the republish executor stops a chain at REPUBLISH_MAX_HOPS).
   */
  async onServicePublish(
    topic: string,
    payload: Buffer,
    mqtt: MqttProperties | undefined,
    hops: number,
  ): Promise<void> {
    await this.runAll({}, topic, payload, mqtt, hops);
  }

  private runAll(
    publisher: Publisher,
    topic: string,
    payload: Buffer,
    mqtt: MqttProperties | undefined,
    hops: number,
  ): Promise<void> {
    // The seed stacks' one rule, on every publish: no list to settle.
    if (this.rules.length === 1) return this.telemetry.run(publisher, topic, payload, mqtt, hops);
    return this.runEvery(publisher, topic, payload, mqtt, hops);
  }

  private async runEvery(
    publisher: Publisher,
    topic: string,
    payload: Buffer,
    mqtt: MqttProperties | undefined,
    hops: number,
  ): Promise<void> {
    // Rules are independent of each other, as in AWS IoT; the first failure that must withhold
    // the PUBACK is the one reported, after every rule has run.
    const outcomes = await Promise.allSettled(
      this.rules.map((r) => r.run(publisher, topic, payload, mqtt, hops)),
    );
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === "rejected");
    if (failed !== undefined) {
      this.log(
        `rules: a rule could not take the message on ${topic}: ${(failed.reason as Error).message}`,
      );
      throw failed.reason;
    }
  }
}
