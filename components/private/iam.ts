// IAM for the pipeline's service roles: one helper that makes a role one AWS service may assume
// (for this account only) with one inline grant, whose statements name exact actions on named
// resources. The wildcard rules are core/iam/policy-audit.ts's, the same the policy pack applies.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import {
  isWildcardAction,
  missingWildcardConditions,
  REQUIRED_WILDCARDS,
  unexcusedWildcardResources,
} from "../../core/iam/policy-audit";

/**
 * The resource a policy names for CloudWatch Logs' group-level actions (CreateLogGroup,
 * CreateLogStream, DescribeLogStreams, PutMetricFilter, PutRetentionPolicy, ...): the log group's
 * ARN with a trailing `:*`, "to refer to the ARN when specifying permissions in IAM policies for all
 * other API actions" than TagResource, UntagResource and ListTagsForResource
 * (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/iam-access-control-overview-cwl.html).
 * The provider's `aws.cloudwatch.LogGroup.arn` is the form without it: pass that here.
 */
export function logGroupPolicyArn(logGroupArn: string): string {
  if (!/:log-group:[^:]+$/.test(logGroupArn)) {
    throw new Error(
      `${logGroupArn} is not a log group ARN without a trailing :* (arn:<partition>:logs:<region>:<account>:log-group:<name>); pass the group's aws.cloudwatch.LogGroup.arn`,
    );
  }
  return `${logGroupArn}:*`;
}

/** An IAM policy statement; Action and Resource are always explicit lists here. */
export interface IamStatement {
  Sid?: string;
  Effect: "Allow";
  Action: string[];
  Resource: string[];
  /** IAM condition block (operator → key → values). */
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface IamDocument {
  Version: "2012-10-17";
  Statement: IamStatement[];
}

/** The service principals this project's roles trust. */
export type ServicePrincipal =
  | "iot.amazonaws.com"
  | "firehose.amazonaws.com"
  | "kinesisanalytics.amazonaws.com"
  | "lambda.amazonaws.com";

/**
 * The condition key each service's documentation uses to tie a role to one account: Firehose's
 * role examples name the account as `sts:ExternalId`; IoT and Managed Flink document the global
 * `aws:SourceAccount` for confused-deputy prevention.
 */
export function accountConditionKey(service: ServicePrincipal): string {
  return service === "firehose.amazonaws.com" ? "sts:ExternalId" : "aws:SourceAccount";
}

/**
 * A trust policy that lets one AWS service assume the role. `sourceAccount` adds the
 * confused-deputy guard AWS recommends: only that account's resources may use the role.
 */
export function trustPolicy(service: ServicePrincipal, sourceAccount?: string): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      {
        Effect: "Allow",
        Principal: { Service: service },
        Action: "sts:AssumeRole",
        ...(sourceAccount === undefined
          ? {}
          : { Condition: { StringEquals: { [accountConditionKey(service)]: sourceAccount } } }),
      },
    ],
  });
}

/**
 * A permissions document of allow statements. It refuses a wildcard action, and a wildcard
 * resource unless AWS requires it for every action of its statement (REQUIRED_WILDCARDS), so a
 * mistake cannot widen a grant.
 */
export function allowDocument(...statements: IamStatement[]): string {
  for (const s of statements) {
    const where = s.Sid ?? "a statement";
    for (const a of s.Action) {
      if (isWildcardAction(a)) throw new Error(`IAM action ${a} in ${where} is a wildcard`);
    }
    const narrowing = Object.values(s.Condition ?? {}).flatMap((keys) =>
      Object.entries(keys)
        .filter(([, v]) => !(Array.isArray(v) ? v : [v]).includes("*"))
        .map(([k]) => k),
    );
    for (const key of missingWildcardConditions(s.Action, s.Resource, narrowing)) {
      throw new Error(`IAM resource * in ${where} needs the ${key} condition key`);
    }
    for (const r of unexcusedWildcardResources(s.Action, s.Resource)) {
      throw new Error(
        `IAM resource ${r} in ${where} is a wildcard; the only ones allowed are ${REQUIRED_WILDCARDS.map((w) => `${w.action} on ${w.shown}`).join(", ")}`,
      );
    }
  }
  const doc: IamDocument = { Version: "2012-10-17", Statement: statements };
  return JSON.stringify(doc);
}

export interface ServiceRoleArgs {
  /** The one service that may assume the role. */
  readonly service: ServicePrincipal;
  /** The role's name; auto-named when undefined. */
  readonly roleName?: pulumi.Input<string>;
  /** The account whose resources alone may use the role (the confused-deputy guard). */
  readonly accountId: pulumi.Input<string>;
  /** The role's permissions, once the resources they name are known; none: no inline grant. */
  readonly statements?: pulumi.Input<IamStatement[]>;
  /**
   * AWS-managed policies to attach, by ARN, where an AWS page names the policy a role must hold
   * (the fleet provisioning role's AWSIoTThingsRegistration). One attachment `name-<policy>` each.
   * @default none
   */
  readonly managedPolicyArns?: readonly string[];
}

/** A service role and its one inline grant. */
export interface ServiceRole {
  readonly role: aws.iam.Role;
  /** The grant; resources that the service checks the role on when created depend on it. */
  readonly grant: aws.iam.RolePolicy;
}

/** A service role with an optional grant and its managed-policy attachments. */
export interface ServiceRoleWithAttachments {
  readonly role: aws.iam.Role;
  readonly grant?: aws.iam.RolePolicy;
  readonly attachments: readonly aws.iam.RolePolicyAttachment[];
  /** What resources using the role depend on: the grant and the attachments. */
  readonly ready: readonly pulumi.Resource[];
}

/**
 * The role `name` (and its grant `name-policy`) for one service, as children of `parent`. Trust
 * and permissions are built the same way for every role of the pipeline.
 */
export function serviceRole(
  name: string,
  args: ServiceRoleArgs & { readonly statements: pulumi.Input<IamStatement[]> },
  parent: pulumi.Resource,
): ServiceRole {
  const { role, grant } = serviceRoleWithAttachments(name, args, parent);
  return { role, grant: grant as aws.iam.RolePolicy };
}

/** The last part of a managed policy's ARN, for the attachment's name. */
function policyBaseName(arn: string): string {
  return arn.split("/").pop() ?? arn;
}

/**
 * {@link serviceRole} for roles whose permissions an AWS page names as a managed policy: the role,
 * its inline grant when there are statements, and one attachment per managed policy.
 */
export function serviceRoleWithAttachments(
  name: string,
  args: ServiceRoleArgs,
  parent: pulumi.Resource,
): ServiceRoleWithAttachments {
  const role = new aws.iam.Role(
    name,
    {
      ...(args.roleName === undefined ? {} : { name: args.roleName }),
      assumeRolePolicy: pulumi.output(args.accountId).apply((a) => trustPolicy(args.service, a)),
    },
    { parent },
  );
  const statements = args.statements;
  const grant =
    statements === undefined
      ? undefined
      : new aws.iam.RolePolicy(
          `${name}-policy`,
          {
            role: role.id,
            policy: pulumi.output(statements).apply((s) => allowDocument(...(s as IamStatement[]))),
          },
          { parent },
        );
  const attachments = (args.managedPolicyArns ?? []).map(
    (policyArn) =>
      new aws.iam.RolePolicyAttachment(
        `${name}-${policyBaseName(policyArn)}`,
        { role: role.name, policyArn },
        { parent },
      ),
  );
  return {
    role,
    grant,
    attachments,
    ready: [...(grant === undefined ? [] : [grant]), ...attachments],
  };
}
