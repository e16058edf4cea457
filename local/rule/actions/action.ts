// What a topic rule action is offline: an executor that a rule of the local engine runs on each
// matched message, built from the action's configuration (core/topic-rules/actions/).
//
// HOW TO ADD A LOCAL EXECUTOR (the third module of an action kind; core/topic-rules/actions/
// action.ts lists all three): write local/rule/actions/<kind>.ts exporting a
// `LocalActionFactory<"<kind>">` and register it in LOCAL_ACTIONS (./index.ts). The factory runs
// once per rule when the engine starts (compile templates there, with compileTemplate); `run`
// runs once per matched message:
//   - resolve once the action has done what AWS would have (written, published, called);
//   - reject with an ActionFailure for a failure AWS documents as the action failing (a refused
//     request, a missing resource, a template that fills in to a bad value): the rule then sends
//     one error message for the message, naming every failed action, to its error action
//     (https://docs.aws.amazon.com/iot/latest/developerguide/rule-error-handling.html);
//   - throw anything else only when the message must not be acknowledged (a local I/O error):
//     the broker then withholds the PUBACK and the device sends it again.
// Services the engine holds (the broker, the monitor, the state folder) come in
// LocalActionServices; an executor whose service is missing throws when it is built.
import type { PipelinePlan } from "../../../core/plan";
import type { MqttProperties, RuleInput, Value } from "../../../core/rule-sql";
import type { ActionKind, ActionSpecOf } from "../../../core/topic-rules/actions";
import type { CompiledTemplate } from "../../../core/topic-rules/template";
import type { RequestLogs } from "./request-log";

/** One matched message, as each action of its rule receives it. */
export interface ActionMessage {
  readonly ruleName: string;
  /** The topic the message arrived on. */
  readonly topic: string;
  /** The publishing client; undefined for a message AWS IoT itself published (a republish). */
  readonly clientId?: string;
  /** The message as published. */
  readonly payload: Buffer;
  /** What the rule's SELECT produced, as the action sends it (JSON, or the payload's own bytes). */
  readonly record: Buffer;
  /** The SELECT's value (read it only when needed: `SELECT *, ...` builds it on demand). */
  readonly output: Value;
  readonly receivedAt: number;
  readonly traceId: string;
  readonly mqtt?: MqttProperties;
  /** How many republishes led here: 0 for a device's message. */
  readonly hops: number;
  /** What a substitution template's expressions are evaluated on (the original message). */
  readonly input: RuleInput;
}

/** Fills a template in for one message. */
export function substitute(template: CompiledTemplate, message: ActionMessage): string {
  return template.dynamic ? template.render(message.input) : template.text;
}

/** An action failing the way AWS reports to the error action. */
export class ActionFailure extends Error {
  constructor(
    message: string,
    /** What the error message's `failedResource` names (stream, topic, alarm, ...). */
    readonly resource: string,
  ) {
    super(message);
    this.name = "ActionFailure";
  }
}

/** One action of a rule, ready to run. */
export interface LocalAction {
  /** The config's (and AWS's API's) key for the kind: `republish`, `firehose`, ... */
  readonly kind: string;
  /** AWS's name in `failures[].failedAction`: `RepublishAction`, `FirehoseAction`, ... */
  readonly failedAction: string;
  /** The resource the action writes to as configured (for a message that could not be evaluated). */
  readonly resource: string;
  run(message: ActionMessage): Promise<void>;
  /**
   * Waits for what the action finishes after its message was acknowledged (a Lambda function
   * invoked asynchronously), when the run stops. @default nothing to wait for
   */
  drain?(): Promise<void>;
}

/** A message AWS IoT itself publishes, fed back to the broker's subscribers and to the rules. */
export interface ServicePublish {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: 0 | 1;
  /** MQTT 5 properties (mqtt-packet's names: contentType, userProperties, ...). */
  readonly properties?: Record<string, unknown>;
  /** The hops of the message that caused it, plus one. */
  readonly hops: number;
}

/** A CloudWatch metric datum, as PutMetricData receives it. */
export interface MetricDatum {
  readonly namespace: string;
  readonly metricName: string;
  readonly value: number;
  readonly unit: string;
  /** Epoch ms. */
  readonly timestamp: number;
}

/** What the local CloudWatch does with the actions' data (local/monitoring/monitor.ts). */
export interface LocalCloudWatch {
  putMetric(datum: MetricDatum): void;
  /** SetAlarmState; throws ActionFailure for an alarm the stack does not have. */
  setAlarmState(alarmName: string, state: string, reason: string, at: number): void;
}

/** The engine's services an executor may use. */
export interface LocalActionServices {
  readonly plan: PipelinePlan;
  /** The run's state folder (`.local`): executors that record write under it. */
  readonly stateDir?: string;
  /**
   * Where the actions of services the pipeline does not run (SNS, SQS, DynamoDB) record the
   * requests AWS would have received: under the state folder (./request-log.ts).
   */
  readonly requests?: RequestLogs;
  readonly log: (line: string) => void;
  readonly now: () => number;
  /** Publishes as AWS IoT (LocalBroker.publishAsService) and runs the rules on it. */
  readonly publish?: (message: ServicePublish) => Promise<void>;
  readonly cloudwatch?: LocalCloudWatch;
}

/** Where an action stands: its rule, its position, and whether it is the error action. */
export interface LocalActionContext {
  readonly ruleName: string;
  /** `<kind>-<index>`, or `errors`. */
  readonly id: string;
  readonly isErrorAction: boolean;
}

/** Builds one kind's executor from its configuration. */
export type LocalActionFactory<K extends ActionKind> = (
  spec: ActionSpecOf<K>,
  services: LocalActionServices,
  ctx: LocalActionContext,
) => LocalAction;

/** A service an executor needs, or a one-line error naming it. */
export function required<T>(service: T | undefined, what: string, ctx: LocalActionContext): T {
  if (service === undefined) {
    throw new Error(
      `rule ${ctx.ruleName}: the ${ctx.id} action needs ${what}, which this engine was not given`,
    );
  }
  return service;
}
