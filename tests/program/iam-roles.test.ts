// Least privilege both ways, as IAM evaluates it: for the dev, prod and fleet stacks, every call of
// core/iam/run-time-calls.ts (the calls each service makes with each role at run time, from AWS's
// pages) is allowed by the role's policies, built from the stack's own names, region and account;
// every near miss (another stream, log group, bucket, prefix, key, account, region) is denied; and
// no granted action or resource goes unused by the table. The decisions are core/iam/policy-eval.ts's
// (IAM's evaluation logic: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
// docs/iam-roles.md renders the table (UPDATE_GOLDEN=1 rewrites it there).
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  createIamEvaluator,
  describeIamEvaluation,
  type IamEvaluator,
} from "../../core/iam/policy-eval";
import {
  fillTemplate,
  MANAGED_POLICIES,
  placeholdersOf,
  renderCallTable,
  ROLE_SERVICES,
  RUN_TIME_CALLS,
  type CallCondition,
  type RoleId,
  type RunTimeCall,
} from "../../core/iam/run-time-calls";
import { actionMatches, resourceMatches } from "../../core/iot-policy/policy";
import { PROJECT_DIR } from "../../core/project";
import { hookRequired } from "../../core/provisioning/hook";
import { listStacks, type RawConfig, type StackConfig } from "../../core/stack-config";
import { MOCK_ACCOUNT_ID, runProgram, type ProgramRun } from "../../tools/mock-program";
import { json, list, ofType, one, statements, trustedServices } from "./helpers";

const T = {
  role: "aws:iam/role:Role",
  rolePolicy: "aws:iam/rolePolicy:RolePolicy",
  attachment: "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
  firehose: "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream",
  kinesis: "aws:kinesis/stream:Stream",
  logGroup: "aws:cloudwatch/logGroup:LogGroup",
  logStream: "aws:cloudwatch/logStream:LogStream",
  app: "aws:kinesisanalyticsv2/application:Application",
  template: "aws:iot/provisioningTemplate:ProvisioningTemplate",
  lambda: "aws:lambda/function:Function",
  bucket: "aws:s3/bucket:Bucket",
  code: "aws:s3/bucketObjectv2:BucketObjectv2",
  key: "aws:kms/key:Key",
  glueDatabase: "aws:glue/catalogDatabase:CatalogDatabase",
  glueTable: "aws:glue/catalogTable:CatalogTable",
  topicRule: "aws:iot/topicRule:TopicRule",
};

/** The log group AWS IoT writes (https://docs.aws.amazon.com/iot/latest/developerguide/cloud-watch-logs.html). */
const IOT_LOG_GROUP = "AWSIotLogsV2";

/** Two values for each placeholder the calling service picks: whatever it picks must be allowed. */
const CALLER_CHOSEN: Readonly<Record<string, readonly string[]>> = {
  "{logStream}": ["2026/12/07/[$LATEST]0123456789abcdef", "a1b2c3d4-e5f6-7890-abcd-ef0123456789"],
  "{objectKey}": [
    "2026/12/07/17/weather-data-stream-1-2026-12-07-17-00-00-0a1b2c3d",
    "errors/processing-failed/2026/12/07/17/weather-data-stream-1-x",
  ],
  "{thingName}": ["store-sensor-seattle-1", "store-sensor-seattle-4"],
  "{certificateId}": ["a".repeat(64), "0123456789abcdef".repeat(4)],
  "{templateValue}": ["store-sensor-seattle1", "store-sensor-seattle3"],
  // What tests/program/rule-actions.test.ts's key template `raw/${topic()}/${timestamp()}` writes.
  "{actionObjectKey}": ["raw/dt/store-1/weather/1765130000000", "raw/x/1"],
};

/** The table's conditions a stack's config meets. */
function conditionsOf(c: StackConfig): Set<CallCondition> {
  return new Set<CallCondition>([
    "always",
    ...(c.analytics !== undefined ? (["analytics"] as const) : []),
    ...(c.delivery.errorLogging ? (["errorLogging"] as const) : []),
    ...(c.lake.format === "parquet" ? (["parquet"] as const) : []),
    ...(c.storage.kmsKey ? (["kmsKey"] as const) : []),
    ...(c.monitoring.iotLogLevel !== "unmanaged" ? (["iotLogging"] as const) : []),
    ...(c.provisioning !== undefined ? (["fleetProvisioning"] as const) : []),
    ...(c.provisioning !== undefined && hookRequired(c.provisioning) ? (["hook"] as const) : []),
    ...(c.provisioning?.allowReprovisioning === false ? (["noReprovisioning"] as const) : []),
    ...(furtherActions(c, "republish").length > 0 ? (["rulesRepublish"] as const) : []),
    ...(furtherActions(c, "cloudwatchMetric").length > 0 ? (["rulesMetric"] as const) : []),
    ...(furtherActions(c, "cloudwatchAlarm").length > 0 ? (["rulesAlarm"] as const) : []),
    ...(furtherActions(c, "s3").length > 0 ? (["s3Action"] as const) : []),
    ...(furtherActions(c, "sns").length > 0 ? (["snsAction"] as const) : []),
    ...(furtherActions(c, "sqs").length > 0 ? (["sqsAction"] as const) : []),
    ...(furtherActions(c, "dynamoDBv2").length > 0 ? (["dynamodbAction"] as const) : []),
    ...(furtherActions(c, "lambda").length > 0 ? (["lambdaAction"] as const) : []),
    ...(c.rules.some((r) => r.errorAction?.kind === "cloudwatchLogs")
      ? (["rulesErrorLogs"] as const)
      : []),
  ]);
}

/** The further rules' (`rules`) actions of one kind. */
function furtherActions(c: StackConfig, kind: string) {
  return c.rules.flatMap((r) => r.actions.filter((a) => a.kind === kind));
}

type Resource = ReturnType<typeof one>;

/**
 * The stack's roles by the table's names, and the values of the table's placeholders: names read
 * from the resources the stack registers (their `name`, `bucket`, `key`, `keyId`), never from a
 * role's policy and never from a provider-computed ARN.
 */
function resolve(run: ProgramRun) {
  const c = run.config;
  const name = (r: Resource, prop = "name") => {
    const v = r.props[prop];
    assert.equal(typeof v, "string", `${r.name} has a ${prop}`);
    return v as string;
  };
  const firehose = (n: string) => one(run, T.firehose, (f) => f.props.name === n);
  const roleByArn = (a: unknown) => one(run, T.role, (r) => r.props.arn === a);
  const roleOf = (stream: Resource) =>
    roleByArn((stream.props.extendedS3Configuration as { roleArn: string }).roleArn);
  const logStreamIn = (g: string) => one(run, T.logStream, (s) => s.props.logGroupName === g);
  const logGroupNamed = (g: string) => name(one(run, T.logGroup, (x) => x.props.name === g));
  const delivery = firehose(c.delivery.streamName);

  const roles: Partial<Record<RoleId, Resource>> = {
    "rule-firehose": one(run, T.role, (r) => r.props.name === c.rule.roleName),
    "rule-errors": one(run, T.role, (r) => r.props.name === `${c.rule.roleName}-errors`),
    delivery: roleOf(delivery),
  };
  const values: Record<string, string> = {
    "{partition}": "aws",
    "{region}": c.region,
    "{account}": MOCK_ACCOUNT_ID,
    "{deliveryStream}": name(delivery),
    "{ruleErrorLogGroup}": logGroupNamed(`/iot/rules/${c.rule.name}/errors`),
    "{bucket}": name(
      one(run, T.bucket, (b) => b.name.endsWith("-delivery-bucket")),
      "bucket",
    ),
  };
  if (c.delivery.errorLogging) {
    const g = logGroupNamed(`/aws/kinesisfirehose/${c.delivery.streamName}`);
    values["{deliveryLogGroup}"] = g;
    values["{firehoseLogStream}"] = name(logStreamIn(g));
  }
  if (c.storage.kmsKey) values["{keyId}"] = name(one(run, T.key), "keyId");
  if (c.lake.format === "parquet") {
    values["{glueDatabase}"] = name(one(run, T.glueDatabase));
    values["{glueTable}"] = name(one(run, T.glueTable));
  }
  if (c.monitoring.iotLogLevel !== "unmanaged") {
    roles["iot-logging"] = one(run, T.role, (r) => r.props.name === `${c.rule.roleName}-logging`);
    values["{iotLogGroup}"] = IOT_LOG_GROUP;
  }
  if (c.analytics !== undefined) {
    const windows = firehose(`${c.delivery.streamName}-windows`);
    const app = one(run, T.app);
    roles["rule-kinesis"] = one(run, T.role, (r) => r.props.name === `${c.rule.roleName}-kinesis`);
    roles["windows-delivery"] = roleOf(windows);
    roles.flink = roleByArn(app.props.serviceExecutionRole);
    const flinkGroup = one(run, T.logGroup, (g) => g.name.includes("analytics-logs"));
    values["{windowsStream}"] = name(windows);
    values["{telemetryKinesis}"] = name(
      one(run, T.kinesis, (s) => s.name.includes("analytics-stream")),
    );
    values["{windowsKinesis}"] = name(
      one(run, T.kinesis, (s) => s.name.includes("windows-kinesis")),
    );
    values["{flinkLogGroup}"] = name(flinkGroup);
    values["{flinkLogStream}"] = name(logStreamIn(name(flinkGroup)));
    values["{codeKey}"] = name(one(run, T.code), "key");
    if (c.delivery.errorLogging) {
      values["{windowsLogGroup}"] = logGroupNamed(`/aws/kinesisfirehose/${name(windows)}`);
    }
  }
  // The further rules' roles, found through the topic rules that name them (the table's stacks
  // have at most one of each kind).
  const further = ofType(run, T.topicRule).filter((r) => r.props.name !== c.rule.name);
  const actionsOf = (list: string) =>
    further.flatMap((r) => (r.props[list] as Record<string, unknown>[] | undefined) ?? []);
  const [republish] = actionsOf("republishes");
  if (republish !== undefined) {
    roles["rules-republish"] = roleByArn(republish.roleArn);
    const topic = republish.topic as string;
    values["{republishPrefix}"] = topic.slice(0, topic.indexOf("${")).replace(/\/$/, "");
  }
  const [metric] = actionsOf("cloudwatchMetrics");
  if (metric !== undefined) {
    roles["rules-metric"] = roleByArn(metric.roleArn);
    values["{metricNamespace}"] = metric.metricNamespace as string;
  }
  const [alarm] = actionsOf("cloudwatchAlarms");
  if (alarm !== undefined) {
    roles["rules-alarm"] = roleByArn(alarm.roleArn);
    values["{alarmName}"] = alarm.alarmName as string;
  }
  const errorLogs = further
    .map(
      (r) =>
        (r.props.errorAction as { cloudwatchLogs?: Record<string, unknown> } | undefined)
          ?.cloudwatchLogs,
    )
    .find((x) => x !== undefined);
  if (errorLogs !== undefined) {
    roles["rules-errors"] = roleByArn(errorLogs.roleArn);
    values["{rulesErrorLogGroup}"] = logGroupNamed(errorLogs.logGroupName as string);
  }
  // The new actions (a synthetic stack below has one of each): their roles through the rule.
  const [s3] = actionsOf("s3");
  if (s3 !== undefined) {
    roles["rule-s3"] = roleByArn(s3.roleArn);
    values["{actionBucket}"] = s3.bucketName as string;
  }
  const [sns] = actionsOf("sns");
  if (sns !== undefined) {
    roles["rule-sns"] = roleByArn(sns.roleArn);
    values["{snsTopic}"] = (sns.targetArn as string).split(":").pop() as string;
  }
  const [sqs] = actionsOf("sqs");
  if (sqs !== undefined) {
    roles["rule-sqs"] = roleByArn(sqs.roleArn);
    values["{sqsQueue}"] = (sqs.queueUrl as string).split("/").pop() as string;
  }
  const [dynamodb] = actionsOf("dynamodbv2s");
  if (dynamodb !== undefined) {
    roles["rule-dynamodb"] = roleByArn(dynamodb.roleArn);
    values["{dynamodbTable}"] = (dynamodb.putItem as { tableName: string }).tableName;
  }
  const [lambda] = actionsOf("lambdas");
  if (lambda !== undefined) {
    const fn = one(run, T.lambda, (f) => f.props.arn === lambda.functionArn);
    roles["rule-lambda-function"] = roleByArn(fn.props.role);
    values["{lambdaLogGroup}"] = logGroupNamed(`/aws/lambda/${name(fn)}`);
  }
  if (c.provisioning !== undefined) {
    const template = one(run, T.template);
    roles.provisioning = roleByArn(template.props.provisioningRoleArn);
    const body = json(template.props.templateBody) as {
      Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
    };
    const of = (type: string) => Object.values(body.Resources).find((r) => r.Type === type);
    values["{devicePolicy}"] = of("AWS::IoT::Policy")?.Properties.PolicyName as string;
    values["{thingGroup}"] = (of("AWS::IoT::Thing")?.Properties.ThingGroups as string[])[0];
    values["{thingType}"] = of("AWS::IoT::Thing")?.Properties.ThingTypeName as string;
    if (hookRequired(c.provisioning)) {
      const fn = one(run, T.lambda);
      roles["provisioning-hook"] = roleByArn(fn.props.role);
      values["{hookLogGroup}"] = logGroupNamed(`/aws/lambda/${name(fn)}`);
    }
  }
  return { roles, values };
}

/** Every (action, resources, context) a row stands for: one per sample of its caller-chosen names. */
function requests(call: RunTimeCall, values: Readonly<Record<string, string>>) {
  const chosen = call.callerChosen ?? [];
  const samples = chosen.length === 0 ? 1 : 2;
  return Array.from({ length: samples }, (_, i) => {
    const v = { ...values };
    for (const p of chosen) v[p] = CALLER_CHOSEN[p][i];
    return {
      action: call.action,
      resources: call.resources.map((r) => fillTemplate(r, v)),
      context: Object.fromEntries(
        Object.entries(call.context ?? {}).map(([k, t]) => [k, fillTemplate(t, v)]),
      ),
    };
  });
}

/** Values close to a stack's own that must not be allowed in its place. */
function nearMisses(placeholder: string, value: string): string[] {
  if (placeholder === "{partition}") return [];
  if (placeholder === "{account}") return ["210987654321"];
  if (placeholder === "{region}") return [value === "eu-west-1" ? "us-west-2" : "eu-west-1"];
  const segments = value.split("/");
  const first = segments.findIndex((s) => s !== "");
  const otherPrefix =
    segments.length > 1 ? segments.map((s, i) => (i === first ? "other" : s)).join("/") : undefined;
  return [`${value}-other`, `other-${value}`, ...(otherPrefix === undefined ? [] : [otherPrefix])];
}

/** The documents a role's permissions are: its inline grants and its AWS-managed policies. */
function documentsOf(run: ProgramRun, role: Resource): unknown[] {
  const inline = ofType(run, T.rolePolicy)
    .filter((p) => p.props.role === role.props.name)
    .map((p) => json(p.props.policy));
  const managed = ofType(run, T.attachment)
    .filter((a) => a.props.role === role.props.name)
    .map((a) => {
      const m = MANAGED_POLICIES[a.props.policyArn as string];
      assert.ok(
        m,
        `${String(a.props.policyArn)} is attached, but the table has no document for it`,
      );
      return m.document;
    });
  return [...inline, ...managed];
}

describe("the run-time call table (core/iam/run-time-calls.ts)", () => {
  it("every row names its caller, an IAM action, a resource per ARN format and two AWS pages", () => {
    assert.ok(
      RUN_TIME_CALLS.length >= 40,
      `expected the table's rows, found ${RUN_TIME_CALLS.length}`,
    );
    for (const c of RUN_TIME_CALLS) {
      const row = `${c.role} ${c.action}`;
      assert.match(c.action, /^[a-z0-9]+:[A-Za-z]+$/, row);
      assert.equal(c.caller, ROLE_SERVICES[c.role], `${row}: the caller is the role's service`);
      assert.ok(c.resources.length > 0, `${row} names a resource`);
      // An action without a resource type (PutMetricData) is authorized on `*`, and then only
      // a condition key can narrow its grant: the row must name it.
      if (c.resourceType === "*") {
        assert.deepEqual(c.resources, ["*"], row);
        assert.ok(
          Object.keys(c.context ?? {}).length > 0,
          `${row}: the condition key narrowing it`,
        );
      } else {
        for (const r of c.resources) assert.match(r, /^arn:\{partition\}:[a-z0-9]+:/, row);
      }
      for (const u of [...c.calledPer.split("; "), ...c.arnPer.split("; ")]) {
        assert.match(u, /^https:\/\/(docs\.aws\.amazon\.com|github\.com\/apache)\//, row);
      }
      for (const p of c.callerChosen ?? []) assert.ok(CALLER_CHOSEN[p], `${row}: samples for ${p}`);
    }
  });

  it("every CloudWatch Logs group-level call is on the log-group ARN with the trailing :*", () => {
    for (const c of RUN_TIME_CALLS.filter((x) => x.resourceType === "log-group")) {
      for (const r of c.resources)
        assert.match(r, /:log-group:([^:]+:)?\*$/, `${c.role} ${c.action}`);
    }
  });

  it("docs/iam-roles.md shows the table as the module renders it (UPDATE_GOLDEN=1 rewrites it)", () => {
    const file = path.join(PROJECT_DIR, "docs", "iam-roles.md");
    const text = fs.readFileSync(file, "utf8");
    const begin = "<!-- run-time-calls:begin (generated from core/iam/run-time-calls.ts) -->\n";
    const end = "\n<!-- run-time-calls:end -->";
    const at = text.indexOf(begin);
    const stop = text.indexOf(end);
    assert.ok(at >= 0 && stop > at, "docs/iam-roles.md has the generated-table markers");
    const actual = text.slice(at + begin.length, stop);
    const expected = renderCallTable();
    if (process.env.UPDATE_GOLDEN === "1" && actual !== expected) {
      fs.writeFileSync(file, text.slice(0, at + begin.length) + expected + text.slice(stop));
      return;
    }
    assert.equal(actual, expected, "run with UPDATE_GOLDEN=1 to rewrite the table in the docs");
  });
});

/**
 * The shipped stacks, and dev with a rule holding one of each action no shipped stack uses
 * (Lambda, S3, SNS, SQS, DynamoDBv2, HTTP), so that every row of the table is held to a role.
 */
const STACKS: ReadonlyArray<readonly [string, string, RawConfig | undefined]> = [
  ...listStacks().map((s) => [`${s} stack`, s, undefined] as const),
  [
    "dev stack with a Lambda, S3, SNS, SQS, DynamoDBv2 and HTTP action",
    "dev",
    {
      rules: [
        {
          name: "copies",
          sql: "SELECT topic(2) AS thing, temperature FROM 'SeattleStoreTemp/+'",
          actions: [
            { lambda: { handler: "functions/log-event.ts" } },
            { s3: { key: "raw/${topic()}/${timestamp()}" } },
            { sns: { topicName: "ops-alerts" } },
            { sqs: { queueName: "readings" } },
            { dynamoDBv2: { tableName: "readings", partitionKey: { name: "thing" } } },
            {
              http: {
                url: "https://hooks.example.com/iot/${topic(2)}",
                confirmationUrl: "https://hooks.example.com/iot/",
                confirmed: true,
              },
            },
          ],
        },
      ],
    },
  ],
];

for (const [label, stack, overrides] of STACKS) {
  describe(`IAM roles of the ${label} allow every run-time call and nothing near it`, () => {
    let run: ProgramRun;
    let resolved: ReturnType<typeof resolve>;
    let conditions = new Set<CallCondition>();
    const evaluators = new Map<RoleId, IamEvaluator>();
    const applicable = () => RUN_TIME_CALLS.filter((c) => c.when.every((w) => conditions.has(w)));
    before(async () => {
      run = await runProgram(stack, overrides === undefined ? {} : { overrides });
      resolved = resolve(run);
      conditions = conditionsOf(run.config);
      for (const [id, role] of Object.entries(resolved.roles) as Array<[RoleId, Resource]>) {
        evaluators.set(id, createIamEvaluator(documentsOf(run, role)));
      }
    });

    it("has exactly the roles its calls need, each trusted by the one service that calls", () => {
      const needed = [...new Set(applicable().map((c) => c.role))].sort();
      assert.deepEqual(Object.keys(resolved.roles).sort(), needed);
      assert.equal(ofType(run, T.role).length, needed.length, "no role beside the table's");
      for (const id of needed) {
        assert.deepEqual(trustedServices(resolved.roles[id] as Resource), [ROLE_SERVICES[id]], id);
      }
    });

    it("attaches exactly the AWS-managed policies the table names", () => {
      const nameOf = new Map(Object.entries(resolved.roles).map(([k, v]) => [v.props.name, k]));
      const attached = ofType(run, T.attachment)
        .map((a) => `${nameOf.get(a.props.role) ?? "?"} ${String(a.props.policyArn)}`)
        .sort();
      const expected = Object.entries(MANAGED_POLICIES)
        .filter(([, m]) => resolved.roles[m.role] !== undefined)
        .map(([arn, m]) => `${m.role} ${arn}`)
        .sort();
      assert.deepEqual(attached, expected);
    });

    it("every call of the table is allowed by its role, on the ARN IAM sees in the request", () => {
      const refused: string[] = [];
      for (const call of applicable()) {
        const evaluate = evaluators.get(call.role);
        assert.ok(evaluate, `${stack} has the ${call.role} role`);
        for (const req of requests(call, resolved.values)) {
          const e = evaluate(req);
          if (e.decision !== "allow") {
            refused.push(
              `${call.role}: ${req.action} on ${req.resources.join(", ")}: ${describeIamEvaluation(e)}`,
            );
          }
        }
      }
      assert.deepEqual(refused, [], `calls the ${stack} stack's roles refuse`);
    });

    it("every near miss is denied: another stream, log group, bucket, prefix, key, account or region", () => {
      const allowed: string[] = [];
      let checked = 0;
      // AWS's AWSIoTThingsRegistration is on `*`: the provisioning role has no near miss to deny.
      for (const call of applicable().filter((c) => c.role !== "provisioning")) {
        const evaluate = evaluators.get(call.role) as IamEvaluator;
        // The resource's own names: a name that reaches only the request's context (the bucket in
        // KMS's encryption context) is a near miss only for a grant that conditions on it.
        // A call on `*` is narrowed by its context alone: its context's names are near-missed.
        const fixed = placeholdersOf(
          call.resourceType === "*" ? call : { ...call, context: undefined },
        ).filter((p) => !(call.callerChosen ?? []).includes(p));
        for (const p of fixed) {
          for (const miss of nearMisses(p, resolved.values[p])) {
            for (const req of requests(call, { ...resolved.values, [p]: miss })) {
              checked += 1;
              if (evaluate(req).decision === "allow") {
                allowed.push(
                  `${call.role}: ${req.action} on ${req.resources.join(", ")} (${p} = ${miss})`,
                );
              }
            }
          }
        }
      }
      assert.ok(checked > 50, `near misses checked: ${checked}`);
      assert.deepEqual(allowed, [], `near misses the ${stack} stack's roles allow`);
    });

    it("grants nothing the table does not call: every granted action and resource is used", () => {
      const unused: string[] = [];
      for (const [id, role] of Object.entries(resolved.roles) as Array<[RoleId, Resource]>) {
        const calls = applicable()
          .filter((c) => c.role === id)
          .flatMap((c) => requests(c, resolved.values));
        const inline = ofType(run, T.rolePolicy).filter((p) => p.props.role === role.props.name);
        for (const s of inline.flatMap((p) => statements(json(p.props.policy)))) {
          assert.equal(s.Effect, "Allow");
          for (const a of list(s.Action)) {
            for (const r of list(s.Resource)) {
              const used = calls.some(
                (c) => actionMatches(a, c.action) && c.resources.some((x) => resourceMatches(r, x)),
              );
              if (!used) unused.push(`${id}: ${a} on ${r}`);
            }
          }
        }
      }
      assert.deepEqual(unused, [], "grants no call of the table needs");
    });
  });
}
