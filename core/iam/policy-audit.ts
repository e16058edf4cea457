// Least-privilege reading of the pipeline's IAM permission policies (the roles IoT, Firehose and
// Managed Flink assume): the one definition of a wildcard action or resource, the few wildcards
// AWS itself requires (each named, with its reason and page), and the audit the policy pack and
// the program's own guard share. Plain functions, no Pulumi.
import { describeStatement, normalizePolicyGrammar } from "../iot-policy/policy";

/** An action pattern with a wildcard: `*`, `s3:*`, `firehose:Put*`, `kinesis:?utRecord`. */
export function isWildcardAction(action: string): boolean {
  return /[*?]/.test(action);
}

/**
 * Whether a resource pattern reaches more than named resources. Scoped: an ARN whose partition,
 * service, region and account are literal and whose resource part names a resource, optionally
 * followed by one trailing `/*` (the objects of one bucket, the keys under one prefix) or `:*` /
 * `:log-stream:*` (the streams of one named log group). A wildcard: `*`, any other wildcard, and a
 * resource part that names only a resource type (`deliverystream/*`, `log-group:*`, `s3:::*`).
 */
export function isWildcardResource(resource: string): boolean {
  if (resource === "*") return true;
  const parts = resource.split(":");
  if (parts[0] !== "arn" || parts.length < 6) return /[*?]/.test(resource);
  if (parts.slice(1, 5).some((p) => /[*?]/.test(p))) return true;
  const name = parts
    .slice(5)
    .join(":")
    .replace(/(\/\*|:log-stream:\*|:\*)$/, "");
  if (/[*?]/.test(name)) return true;
  // S3 ARNs have no resource type: the name starts with the bucket. SNS topics and SQS queues
  // neither: `arn:<partition>:sns:<region>:<account>:<TopicName>`, `...:sqs:...:<QueueName>`
  // (the Service Authorization Reference's list_amazonsns.html and list_amazonsqs.html).
  if (parts[2] === "s3" || parts[2] === "sns" || parts[2] === "sqs") return name === "";
  // A region's Glue Data Catalog is one resource per account: `catalog` names it
  // (https://docs.aws.amazon.com/glue/latest/dg/glue-specifying-resource-arns.html).
  if (parts[2] === "glue" && name === "catalog") return false;
  // `type/name` or `type:name`: a type alone names nothing.
  return !/^[A-Za-z0-9-]+[/:].+$/.test(name);
}

/** A wildcard an AWS service requires, by name: which action, on which resource pattern, and why. */
export interface RequiredWildcard {
  readonly action: string;
  /** The resource as a reader should see it, for messages. */
  readonly shown: string;
  /** The resource pattern's shape, any partition, region and account. */
  readonly resource: RegExp;
  readonly reason: string;
  readonly page: string;
  /** A condition key the statement must narrow the wildcard with (a value other than `*`). */
  readonly condition?: string;
}

/**
 * The only wildcards the pipeline's roles may hold. Managed Flink's logging looks up the
 * application's log group by listing the account's groups, and DescribeLogGroups authorizes on
 * `log-group:*`, not on one group.
 */
export const REQUIRED_WILDCARDS: readonly RequiredWildcard[] = [
  {
    action: "logs:DescribeLogGroups",
    shown: "arn:<partition>:logs:<region>:<account>:log-group:*",
    resource: /^arn:[a-z-]+:logs:[a-z0-9-]+:\d{12}:log-group:\*$/,
    reason:
      "Managed Service for Apache Flink lists the account's log groups to find the application's; its documented application policy grants logs:DescribeLogGroups on the account's log groups, not on one group",
    page: "https://docs.aws.amazon.com/managed-flink/latest/java/examples-gs-scala-create-run-cli.html",
  },
  {
    action: "iot:DescribeThing",
    shown: "arn:<partition>:iot:<region>:<account>:thing/<fleet prefix>*",
    // A literal prefix before the `*`: never `thing/*`.
    resource: /^arn:[a-z-]+:iot:[a-z0-9-]+:\d{12}:thing\/[a-zA-Z0-9:_-]+\*$/,
    reason:
      "the pre-provisioning hook asks whether a serial's thing exists before it lets the serial provision, and the things are named at run time (<fleet prefix><serial>); DescribeThing authorizes on the thing (resource type thing, arn:${Partition}:iot:${Region}:${Account}:thing/${ThingName})",
    page: "https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsiot.html",
  },
  {
    action: "cloudwatch:PutMetricData",
    shown: "* (narrowed by the cloudwatch:namespace condition key)",
    resource: /^\*$/,
    reason:
      "a rule's CloudWatch metric action calls PutMetricData, which has no resource type: IAM authorizes it on * only, and the cloudwatch:namespace condition key is what narrows the grant (components/rule/actions/cloudwatch-metric.ts always sets it)",
    page: "https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html",
    condition: "cloudwatch:namespace",
  },
];

/**
 * The condition keys a statement's wildcard resources need and lack: a required wildcard that
 * names a `condition` is accepted only with that key narrowing it (`conditionKeys`: the keys the
 * statement's conditions set to something other than `*`).
 */
export function missingWildcardConditions(
  actions: readonly string[],
  resources: readonly string[],
  conditionKeys: readonly string[],
): string[] {
  const have = new Set(conditionKeys.map((k) => k.toLowerCase()));
  const missing = new Set<string>();
  for (const r of resources.filter(isWildcardResource)) {
    for (const a of actions) {
      const c = requiredWildcard(a, r)?.condition;
      if (c !== undefined && !have.has(c.toLowerCase())) missing.add(c);
    }
  }
  return [...missing];
}

/** The named exception that allows `action` on the wildcard `resource`, if there is one. */
export function requiredWildcard(action: string, resource: string): RequiredWildcard | undefined {
  return REQUIRED_WILDCARDS.find(
    (w) => w.action.toLowerCase() === action.toLowerCase() && w.resource.test(resource),
  );
}

/**
 * The wildcard resources of a statement that no named exception covers: a wildcard resource is
 * accepted only when every action of the statement is required on it.
 */
export function unexcusedWildcardResources(
  actions: readonly string[],
  resources: readonly string[],
): string[] {
  return resources.filter(
    (r) =>
      isWildcardResource(r) &&
      (actions.length === 0 || !actions.every((a) => requiredWildcard(a, r) !== undefined)),
  );
}

/** One wildcard finding, with a message naming the statement and what to change. */
export interface IamFinding {
  readonly statement: string;
  readonly message: string;
}

/** Allow statements of an IAM document that use a wildcard action or resource, NotAction or NotResource. */
export function iamWildcardFindings(doc: unknown): IamFinding[] {
  const findings: IamFinding[] = [];
  for (const s of normalizePolicyGrammar(doc)) {
    if (s.effect !== "Allow") continue;
    const where = describeStatement(s);
    if (s.notActions) {
      findings.push({
        statement: where,
        message: `${where} is an Allow with NotAction, which grants every other action; list the actions the service needs in Action`,
      });
    }
    if (s.notResources) {
      findings.push({
        statement: where,
        message: `${where} is an Allow with NotResource, which grants every other resource; list the resource ARNs in Resource`,
      });
    }
    const actions = (s.actions ?? []).filter(isWildcardAction);
    if (actions.length > 0) {
      findings.push({
        statement: where,
        message: `${where} allows the wildcard action ${actions.join(", ")}; name the exact actions the service needs (for example firehose:PutRecord, firehose:PutRecordBatch)`,
      });
    }
    const narrowing = s.conditions.filter((c) => !c.values.includes("*")).map((c) => c.key);
    for (const key of missingWildcardConditions(s.actions ?? [], s.resources ?? [], narrowing)) {
      findings.push({
        statement: where,
        message: `${where} allows ${(s.actions ?? []).join(", ")} on * without the ${key} condition key; add a Condition that names the one ${key.split(":")[1]} the role needs`,
      });
    }
    const resources = unexcusedWildcardResources(s.actions ?? [], s.resources ?? []);
    if (resources.length > 0) {
      findings.push({
        statement: where,
        message: `${where} allows ${(s.actions ?? ["its actions"]).join(", ")} on the wildcard resource ${resources.join(", ")}; name the ARN of the one stream, bucket or log group the role needs (the only wildcards allowed are the ones AWS requires: ${REQUIRED_WILDCARDS.map((w) => `${w.action} on ${w.shown}`).join(", ")})`,
      });
    }
  }
  return findings;
}

/**
 * The CloudWatch Logs actions IAM authorizes on a log group's ARN *without* a trailing `:*`; every
 * other action on a group is authorized on the ARN with it, and PutLogEvents on the stream's ARN
 * (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/iam-access-control-overview-cwl.html;
 * the API reference's LogGroup `arn` vs `logGroupArn`).
 */
export const LOGS_BARE_GROUP_ACTIONS: readonly string[] = [
  "logs:TagResource",
  "logs:UntagResource",
  "logs:ListTagsForResource",
];

/** `arn:…:logs:…:log-group:NAME` with a literal name and nothing after it. */
const BARE_LOG_GROUP = /^arn:[^:]+:logs:[^:]*:[^:]*:log-group:[^:*?]+$/;

/**
 * Allow statements that grant a CloudWatch Logs action on a log group's ARN without the trailing
 * `:*`, where IAM never sees that ARN for the action: the grant is accepted at create time and
 * refused at run time, silently (the provider's `aws.cloudwatch.LogGroup.arn` is that form).
 */
export function logGroupArnFindings(doc: unknown): IamFinding[] {
  const findings: IamFinding[] = [];
  const bareOk = new Set(LOGS_BARE_GROUP_ACTIONS.map((a) => a.toLowerCase()));
  for (const s of normalizePolicyGrammar(doc)) {
    if (s.effect !== "Allow") continue;
    const actions = (s.actions ?? []).filter(
      (a) => /^logs:/i.test(a) && !isWildcardAction(a) && !bareOk.has(a.toLowerCase()),
    );
    const bare = (s.resources ?? []).filter((r) => BARE_LOG_GROUP.test(r));
    if (actions.length === 0 || bare.length === 0) continue;
    const where = describeStatement(s);
    findings.push({
      statement: where,
      message: `${where} allows ${actions.join(", ")} on ${bare.join(", ")}, a log group's ARN without the trailing :*, which IAM never sees for these actions; grant group-level actions on ${bare[0]}:* and PutLogEvents on ${bare[0]}:log-stream:<stream> (the provider's LogGroup.arn has the :* removed)`,
    });
  }
  return findings;
}
