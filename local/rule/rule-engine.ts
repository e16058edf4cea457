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
  type ShadowLookup,
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
  type RuleErrorMessage,
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
  /** What get_thing_shadow() reads: in the pipeline, the local Device Shadow service. */
  readonly shadow?: ShadowLookup;
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

/** What a message no rule took waits for. */
const DONE: Promise<void> = Promise.resolve();

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
    const common = {
      registry,
      ...(opts.shadow === undefined ? {} : { shadow: opts.shadow }),
      accountId: LOCAL_ACCOUNT_ID,
      now,
      uuid,
      log,
    };
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
              // A republished message is a message of its own: the republish is done once the
              // broker took it; the rules run on it beside (tracked, drained at stop).
              this.track(
                this.onServicePublish(
                  m.topic,
                  m.payload,
                  m.properties as MqttProperties | undefined,
                  hops,
                ),
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

  /** Adds a consumer of every error message any rule's error action received (the dashboard's list). */
  onError(listener: (message: RuleErrorMessage) => void): void {
    for (const r of this.rules) r.onError(listener);
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

  /** Adds a consumer of every telemetry-rule match's SELECT output (called after the actions). */
  onOutput(listener: RuleOutputListener): void {
    this.telemetry.onOutput(listener);
  }

  /** Each rule's figures, by rule name. */
  ruleStats(): Record<string, RuleStats> {
    return Object.fromEntries(this.rules.map((r) => [r.name, r.stats]));
  }

  /**
   * Runs every rule on one accepted publish. Resolves when the telemetry rule's actions have taken
   * the message (durably); rejects only when its action and error action could not, so that the
   * broker withholds the PUBACK and the device sends the message again. A message the SQL cannot
   * be evaluated on goes to the error action and is acknowledged: sending it again cannot help.
   * The further rules run beside it (see runEvery).
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
   * A message AWS IoT itself published (a shadow response, a lifecycle event): every rule runs on
   * it beside the request that caused it (tracked, drained at stop), as one hop, so that it never
   * waits for a slot of the further rules' window and a chain of republishes it starts is bounded.
   */
  fromAws(topic: string, payload: Buffer): void {
    this.track(this.onServicePublish(topic, payload, undefined, 1));
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
    if (this.rules.length === 1) {
      try {
        return this.telemetry.start(publisher, topic, payload, mqtt, hops) ?? DONE;
      } catch (e) {
        return Promise.reject(e instanceof Error ? e : new Error(String(e)));
      }
    }
    return this.runEvery(publisher, topic, payload, mqtt, hops);
  }

  private async runEvery(
    publisher: Publisher,
    topic: string,
    payload: Buffer,
    mqtt: MqttProperties | undefined,
    hops: number,
  ): Promise<void> {
    // Rules are independent of each other, as in AWS IoT, where no rule holds the PUBACK. Here
    // the telemetry rule does (its record is durable first); the further rules run beside it,
    // tracked, and a device's publish waits only while FURTHER_RULES_IN_FLIGHT_MAX runs are
    // under way (a flood of matching messages cannot queue work without end).
    for (const r of this.rules) {
      if (r === this.telemetry) continue;
      // A rule that does not take the message has nothing to track (no promise, no entry).
      let run: Promise<void> | undefined;
      try {
        run = r.start(publisher, topic, payload, mqtt, hops);
      } catch (e) {
        run = Promise.reject(e instanceof Error ? e : new Error(String(e)));
      }
      if (run !== undefined) this.track(run);
    }
    await this.telemetry.start(publisher, topic, payload, mqtt, hops);
    // Messages AWS IoT published (republishes) never wait: a full window of republishes
    // waiting for a slot would hold it forever; the hop bound ends their chains.
    while (hops === 0 && this.inFlight.size >= FURTHER_RULES_IN_FLIGHT_MAX) {
      await Promise.race(this.inFlight);
    }
  }

  /** Runs of further rules under way. */
  private readonly inFlight = new Set<Promise<void>>();
  /** Further rules' runs that failed other than to their error action (a local I/O error). */
  furtherRuleFailures = 0;

  private track(run: Promise<void>): void {
    const tracked: Promise<void> = run
      .catch((e: unknown) => {
        this.furtherRuleFailures++;
        this.log(`rules: a further rule could not run: ${(e as Error).message}`);
      })
      .finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  /**
   * Waits until no further rule runs (and none a republish started), then for what the actions
   * finish after acknowledging (Lambda runs): at stop, after the broker, before the summary.
   */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    await Promise.all(this.actions.map((a) => a.drain?.()));
  }
}

/**
 * The most runs of further rules under way before a device's publish waits (its PUBACK with it):
 * a bound on the work and memory a flood of matching messages can queue.
 */
export const FURTHER_RULES_IN_FLIGHT_MAX = 256;
