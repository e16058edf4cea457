// What a topic rule action is: an object that, bound to its rule, creates the role the action
// assumes with exactly the grant its AWS page requires and returns the action's configuration.
// Adding an action touches one file, and the grant can never drift from the action (the AWS CDK's
// IAction._bind, aws-iot-actions-alpha).
import type * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { PipelinePlan } from "../../../core/plan";
import type { ActionKind, ActionSpecOf } from "../../../core/topic-rules/actions";
import { type IamStatement, type ServiceRole, serviceRole } from "../../private/iam";

/** Where an action is bound: the rule component, its name, and the account its roles trust. */
export interface RuleBindContext {
  /** The rule component; the action's role and grant are its children. */
  readonly parent: pulumi.ComponentResource;
  /** The rule component's name: the action's role is `<name>-<action id>-role`. */
  readonly name: string;
  readonly accountId: pulumi.Input<string>;
  /**
   * `arn:<partition>:<service>:<region>:<account>:<resource>` in the stack's partition, region
   * and account (looked up on first use).
   */
  arn(service: string, resource: pulumi.Input<string>): pulumi.Output<string>;
}

/**
 * One action's configuration, in the shape aws.iot.TopicRule takes it. Every kind this project
 * configures or may configure is listed, so that an action module only adds its own file.
 */
export type RuleActionConfig =
  | { readonly kind: "firehose"; readonly value: aws.types.input.iot.TopicRuleFirehose }
  | { readonly kind: "kinesis"; readonly value: aws.types.input.iot.TopicRuleKinesis }
  | { readonly kind: "cloudwatchLogs"; readonly value: aws.types.input.iot.TopicRuleCloudwatchLog }
  | { readonly kind: "republish"; readonly value: aws.types.input.iot.TopicRuleRepublish }
  | {
      readonly kind: "cloudwatchMetric";
      readonly value: aws.types.input.iot.TopicRuleCloudwatchMetric;
    }
  | {
      readonly kind: "cloudwatchAlarm";
      readonly value: aws.types.input.iot.TopicRuleCloudwatchAlarm;
    }
  | { readonly kind: "lambda"; readonly value: aws.types.input.iot.TopicRuleLambda }
  | { readonly kind: "s3"; readonly value: aws.types.input.iot.TopicRuleS3 }
  | { readonly kind: "sns"; readonly value: aws.types.input.iot.TopicRuleSns }
  | { readonly kind: "sqs"; readonly value: aws.types.input.iot.TopicRuleSqs }
  | { readonly kind: "dynamodbv2"; readonly value: aws.types.input.iot.TopicRuleDynamodbv2 }
  | { readonly kind: "http"; readonly value: aws.types.input.iot.TopicRuleHttp };

/** The kinds of action this project configures. */
export type RuleActionKind = RuleActionConfig["kind"];

/** The configuration of one kind of action. */
export type RuleActionConfigOf<K extends RuleActionKind> = Extract<RuleActionConfig, { kind: K }>;

/**
 * Where aws.iot.TopicRule holds each kind: its list of actions, and its key inside `errorAction`
 * (the API's Action member, https://docs.aws.amazon.com/iot/latest/apireference/API_Action.html).
 */
export const ACTION_FIELDS: {
  readonly [K in RuleActionKind]: {
    readonly list: keyof aws.iot.TopicRuleArgs;
    readonly error: keyof aws.types.input.iot.TopicRuleErrorAction;
  };
} = {
  firehose: { list: "firehoses", error: "firehose" },
  kinesis: { list: "kineses", error: "kinesis" },
  cloudwatchLogs: { list: "cloudwatchLogs", error: "cloudwatchLogs" },
  republish: { list: "republishes", error: "republish" },
  cloudwatchMetric: { list: "cloudwatchMetrics", error: "cloudwatchMetric" },
  cloudwatchAlarm: { list: "cloudwatchAlarms", error: "cloudwatchAlarm" },
  lambda: { list: "lambdas", error: "lambda" },
  s3: { list: "s3", error: "s3" },
  sns: { list: "sns", error: "sns" },
  sqs: { list: "sqs", error: "sqs" },
  dynamodbv2: { list: "dynamodbv2s", error: "dynamodbv2" },
  http: { list: "https", error: "http" },
};

/** What binding an action gives the rule. */
export interface RuleActionBinding<C extends RuleActionConfig = RuleActionConfig> {
  readonly config: C;
  /** The role the action assumes (none for Lambda and HTTP, which IoT calls without one). */
  readonly role?: aws.iam.Role;
  /**
   * What the rule waits for: the role's grant (IoT checks, when it creates the rule, that it may
   * pass the role), or what lets IoT call the action without one (a Lambda function's permission).
   */
  readonly grant?: pulumi.Resource;
}

/** The binding of an action that assumes a role. */
export type RuleActionRoleBinding<C extends RuleActionConfig = RuleActionConfig> =
  RuleActionBinding<C> & { readonly role: aws.iam.Role; readonly grant: pulumi.Resource };

/**
 * A topic rule action (or error action). `bind` is called once, by the rule component: it
 * creates, as children of `rule.parent` named `<rule.name>-<id>-...`, the role the action assumes
 * (with `actionRole`, granting exactly what the action's AWS page requires) and whatever else
 * the action owns (a log group, an alarm), and returns the action's configuration.
 */
export interface RuleAction {
  /** Names the action's role among the rule's children (`firehose`, `errors`, `kinesis`, ...). */
  readonly id: string;
  bind(rule: RuleBindContext): RuleActionBinding;
}

/** What a configured action's factory may use besides its parameters. */
export interface ProgramActionContext {
  /** The action's id among its rule's: `<kind>-<index>`, or `errors` for the error action. */
  readonly id: string;
  /** The topic rule's name in AWS IoT. */
  readonly ruleName: string;
  readonly isErrorAction: boolean;
  /** The stack's plan (core/plan.ts): names and settings the action may need. */
  readonly plan: PipelinePlan;
  /** The stack's alarm topic, when the stack has alarms: where an action's own alarms notify. */
  readonly alarmTopicArn?: pulumi.Input<string>;
  /** The stack's bucket (and its customer-managed key, with `kmsKey`): where an S3 action writes. */
  readonly bucket?: {
    readonly name: pulumi.Input<string>;
    readonly arn: pulumi.Input<string>;
    readonly kmsKeyArn?: pulumi.Input<string>;
  };
}

/**
 * Turns one configured action (core/topic-rules/actions/) into its RuleAction. One per kind, in
 * the kind's module; PROGRAM_ACTIONS (./index.ts) lists them.
 */
export type ProgramActionFactory<K extends ActionKind> = (
  spec: ActionSpecOf<K>,
  ctx: ProgramActionContext,
) => RuleAction;

/**
 * An action's role: `<rule>-<id>-role`, trusted by IoT for this account only, granted the
 * statements `grant` makes for the action's resource once its ARN (or ARNs, as an object) is known.
 */
export function actionRole<T>(
  rule: RuleBindContext,
  id: string,
  roleName: pulumi.Input<string> | undefined,
  resourceArn: pulumi.Input<T>,
  grant: (arn: pulumi.Unwrap<T>) => IamStatement[],
): ServiceRole {
  return serviceRole(
    `${rule.name}-${id}-role`,
    {
      service: "iot.amazonaws.com",
      roleName,
      accountId: rule.accountId,
      statements: pulumi.output(resourceArn).apply(grant),
    },
    rule.parent,
  );
}
