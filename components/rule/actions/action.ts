// What a topic rule action is: an object that, bound to its rule, creates the role the action
// assumes with exactly the grant its AWS page requires and returns the action's configuration.
// Adding an action touches one file, and the grant can never drift from the action (the AWS CDK's
// IAction._bind, aws-iot-actions-alpha).
import type * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { type IamStatement, type ServiceRole, serviceRole } from "../../private/iam";

/** Where an action is bound: the rule component, its name, and the account its roles trust. */
export interface RuleBindContext {
  /** The rule component; the action's role and grant are its children. */
  readonly parent: pulumi.ComponentResource;
  /** The rule component's name: the action's role is `<name>-<action id>-role`. */
  readonly name: string;
  readonly accountId: pulumi.Input<string>;
  /**
   * The topic rule's own name (letters, digits, underscores), for what must name the rule that
   * may use it: a Lambda function's resource policy. @default undefined: such an action refuses
   * to bind
   */
  readonly ruleName?: string;
}

/** One action's configuration, in the shape aws.iot.TopicRule takes it. */
export type RuleActionConfig =
  | { readonly kind: "firehose"; readonly value: aws.types.input.iot.TopicRuleFirehose }
  | { readonly kind: "kinesis"; readonly value: aws.types.input.iot.TopicRuleKinesis }
  | {
      readonly kind: "cloudwatchLogs";
      readonly value: aws.types.input.iot.TopicRuleCloudwatchLog;
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

/** What binding an action gives the rule. */
export interface RuleActionBinding<C extends RuleActionConfig = RuleActionConfig> {
  readonly config: C;
  /** The role the action assumes (none for Lambda and HTTP, which IoT calls without one). */
  readonly role?: aws.iam.Role;
  /** Its grant: IoT checks, when it creates the rule, that it may pass the role. */
  readonly grant?: pulumi.Resource;
}

/** The binding of an action that assumes a role. */
export type RuleActionRoleBinding<C extends RuleActionConfig = RuleActionConfig> =
  RuleActionBinding<C> & { readonly role: aws.iam.Role; readonly grant: pulumi.Resource };

/** A topic rule action (or error action). */
export interface RuleAction {
  /** Names the action's role among the rule's children (`firehose`, `errors`, `kinesis`, ...). */
  readonly id: string;
  bind(rule: RuleBindContext): RuleActionBinding;
}

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
