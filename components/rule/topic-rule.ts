// A topic rule: IoT SQL (2016-03-23) over a topic filter, its actions (each an object from
// ./actions that creates its own role and grant) and its error action. The pipeline's telemetry
// rule (./telemetry-rule.ts) is one; the stack config's further rules (`rules`) are the others.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import {
  ACTION_FIELDS,
  type RuleAction,
  type RuleActionBinding,
  type RuleActionConfig,
  type RuleBindContext,
} from "./actions/action";

export interface TopicRuleArgs {
  /** The rule's name: letters, digits and underscores (the seed's `sensor_rule`). */
  readonly ruleName: string;
  /** IoT SQL (version 2016-03-23). */
  readonly sql: string;
  /** What the rule is for, shown in the AWS IoT console. @default undefined: none */
  readonly description?: string;
  /** @default true */
  readonly enabled?: boolean;
  /** What the rule does with every matched message. */
  readonly actions: readonly RuleAction[];
  /** What runs when an action fails (its id must be `errors`). @default undefined: none */
  readonly errorAction?: RuleAction;
}

/** The topic rule's action lists (`firehoses`, `kineses`, ...) from bound actions. */
function actionLists(bindings: readonly RuleActionBinding[]): Record<string, unknown[]> {
  const lists: Record<string, unknown[]> = {};
  for (const { config } of bindings) {
    const key = ACTION_FIELDS[config.kind].list;
    (lists[key] ??= []).push(config.value);
  }
  return lists;
}

/** The topic rule's `errorAction` from its bound error action. */
function errorActionOf(config: RuleActionConfig): aws.types.input.iot.TopicRuleErrorAction {
  return { [ACTION_FIELDS[config.kind].error]: config.value };
}

export class TopicRule extends pulumi.ComponentResource {
  /** The topic rule. */
  readonly rule: aws.iot.TopicRule;
  /** The role each action assumes, by action id (`firehose`, `kinesis`, ...). */
  readonly actionRoles: Readonly<Record<string, aws.iam.Role>>;
  /** The error action, when the rule has one. */
  readonly errorAction?: RuleAction;
  /** The error action's binding, when the rule has one. */
  readonly errorBinding?: RuleActionBinding;
  /** The rule's name. */
  readonly ruleName: pulumi.Output<string>;

  constructor(
    name: string,
    args: TopicRuleArgs,
    opts?: pulumi.ComponentResourceOptions,
    /** The component's type token (the telemetry rule keeps its own). */
    type = "iot-pipeline:rule:TopicRule",
  ) {
    super(type, name, {}, opts);
    if (args.actions.length === 0) throw new Error(`topic rule ${args.ruleName} has no action`);
    const ids = args.actions.map((a) => a.id);
    if (new Set([...ids, "errors"]).size !== ids.length + 1) {
      throw new Error(`topic rule ${args.ruleName}'s action ids must be unique: ${ids.join(", ")}`);
    }
    const accountId = aws.getCallerIdentityOutput({}, { parent: this }).accountId;
    let where: pulumi.Output<[string, string]> | undefined;
    const context: RuleBindContext = {
      parent: this,
      name,
      accountId,
      arn: (service, resource) => {
        where ??= pulumi.all([
          aws.getPartitionOutput({}, { parent: this }).partition,
          aws.getRegionOutput({}, { parent: this }).region,
        ]);
        return pulumi.interpolate`arn:${where[0]}:${service}:${where[1]}:${accountId}:${resource}`;
      },
    };
    const bindings = args.actions.map((a) => a.bind(context));
    this.actionRoles = Object.fromEntries(
      args.actions.flatMap((a, i) => {
        const role = bindings[i].role;
        return role === undefined ? [] : [[a.id, role]];
      }),
    );
    this.errorAction = args.errorAction;
    const error = args.errorAction?.bind(context);
    this.errorBinding = error;

    this.rule = new aws.iot.TopicRule(
      `${name}-rule`,
      {
        name: args.ruleName,
        enabled: args.enabled ?? true,
        sql: args.sql,
        sqlVersion: "2016-03-23",
        ...(args.description === undefined ? {} : { description: args.description }),
        ...actionLists(bindings),
        ...(error === undefined ? {} : { errorAction: errorActionOf(error.config) }),
      },
      // IoT checks that it can pass each role when the rule is created.
      {
        parent: this,
        dependsOn: [...bindings, ...(error === undefined ? [] : [error])].flatMap((b) =>
          b.grant === undefined ? [] : [b.grant],
        ),
      },
    );

    this.ruleName = this.rule.name;
    this.registerOutputs({ ruleName: this.ruleName });
  }
}
