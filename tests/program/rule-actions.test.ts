// The new topic rule actions, each registered under Pulumi mocks with its least-privilege role:
// Lambda (no role; a resource policy scoped to the rule with sourceArn and sourceAccount, and the
// function built from a handler under functions/), S3 (bucket and key template, no canned ACL),
// SNS, SQS, DynamoDBv2 (the table the stack creates) and HTTP (only to a confirmed topic rule
// destination). Each role is held to core/iam/run-time-calls.ts through the IAM evaluator both
// ways, as tests/program/iam-roles.test.ts does for the stacks: each call the action's page names
// is allowed on the ARN IAM sees, each near miss denied, nothing else granted.
// Pages: https://docs.aws.amazon.com/iot/latest/developerguide/lambda-rule-action.html,
// s3-rule-action.html, sns-rule-action.html, sqs-rule-action.html, dynamodb-v2-rule-action.html,
// https-rule-action.html, http-action-destination.html.
import { strict as assert } from "node:assert";
import { HttpAction, S3Action } from "../../components/rule/actions";
import { createIamEvaluator, describeIamEvaluation } from "../../core/iam/policy-eval";
import {
  fillTemplate,
  ROLE_SERVICES,
  RUN_TIME_CALLS,
  type RoleId,
  type RunTimeCall,
} from "../../core/iam/run-time-calls";
import { actionMatches, resourceMatches } from "../../core/iot-policy/policy";
import { MOCK_ACCOUNT_ID, runProgram, type ProgramRun } from "../../tools/mock-program";
import { json, list, ofType, one, statements, trustedServices } from "./helpers";

const T = {
  rule: "aws:iot/topicRule:TopicRule",
  role: "aws:iam/role:Role",
  rolePolicy: "aws:iam/rolePolicy:RolePolicy",
  fn: "aws:lambda/function:Function",
  permission: "aws:lambda/permission:Permission",
  table: "aws:dynamodb/table:Table",
  logGroup: "aws:cloudwatch/logGroup:LogGroup",
};

const RULE = "alerts_rule";
const HOOK = "https://hooks.example.com/iot/";

/**
 * A stack whose `rules` list holds a rule with every new action, built from the stack config
 * through the plan, as `pulumi up` builds it (prod: its bucket has a customer-managed key).
 */
async function build(stack = "dev"): Promise<ProgramRun> {
  return runProgram(stack, {
    overrides: {
      rules: [
        {
          name: RULE,
          sql: "SELECT thing, temperature FROM 'dt/+/weather' WHERE temperature > 30",
          actions: [
            { lambda: { handler: "functions/log-event.ts" } },
            { s3: { key: "raw/${topic()}/${timestamp()}" } },
            { sns: { topicName: "ops-alerts", messageFormat: "JSON" } },
            { sqs: { queueName: "readings", useBase64: true } },
            {
              dynamoDBv2: {
                tableName: "readings",
                partitionKey: { name: "thing", type: "S" },
                sortKey: { name: "ts", type: "N" },
              },
            },
            {
              http: {
                url: `${HOOK}\${topic(2)}`,
                confirmationUrl: HOOK,
                headers: [{ key: "x-thing", value: "${topic(2)}" }],
                confirmed: true,
              },
            },
          ],
        },
      ],
    },
  });
}

/** The table's placeholders, read from what the stack registers (never from a role's policy). */
function valuesOf(run: ProgramRun): Record<string, string> {
  const bucket = one(run, "aws:s3/bucket:Bucket", (b) => b.name.endsWith("-delivery-bucket"));
  const key = ofType(run, "aws:kms/key:Key")[0];
  return {
    "{partition}": "aws",
    "{region}": run.config.region,
    "{account}": MOCK_ACCOUNT_ID,
    "{actionBucket}": bucket.props.bucket as string,
    "{snsTopic}": "ops-alerts",
    "{sqsQueue}": "readings",
    "{dynamodbTable}": one(run, T.table).props.name as string,
    "{lambdaLogGroup}": one(
      run,
      T.logGroup,
      (g) => g.props.name === `/aws/lambda/${RULE}-log-event`,
    ).props.name as string,
    ...(key === undefined ? {} : { "{keyId}": key.props.keyId as string }),
  };
}

/** What the S3 key template `raw/${topic()}/${timestamp()}` writes, and what the services name. */
const CHOSEN: Record<string, readonly string[]> = {
  "{actionObjectKey}": ["raw/dt/store-1/weather/1765130000000", "raw/x/1"],
  "{logStream}": ["2026/12/07/[$LATEST]0123456789abcdef", "a1b2c3d4"],
};

function requests(call: RunTimeCall, values: Record<string, string>) {
  const chosen = call.callerChosen ?? [];
  return [0, 1].slice(0, chosen.length === 0 ? 1 : 2).map((i) => {
    const v = { ...values };
    for (const p of chosen) v[p] = CHOSEN[p][i];
    return { action: call.action, resources: call.resources.map((r) => fillTemplate(r, v)) };
  });
}

/** The action roles by the table's names: `<rule component>-<kind>-<index>-role`. */
const ROLE_SUFFIXES: Record<string, RoleId> = {
  "-s3-1-role": "rule-s3",
  "-sns-2-role": "rule-sns",
  "-sqs-3-role": "rule-sqs",
  "-dynamoDBv2-4-role": "rule-dynamodb",
};

function roleIdOf(run: ProgramRun, role: ReturnType<typeof one>): RoleId | undefined {
  for (const [suffix, id] of Object.entries(ROLE_SUFFIXES)) {
    if (role.name.endsWith(`-topic-rule-${RULE}${suffix}`)) return id;
  }
  const fn = one(run, T.fn);
  return fn.props.role === role.props.arn ? "rule-lambda-function" : undefined;
}

function checkRoles(run: ProgramRun) {
  const kms = ofType(run, "aws:kms/key:Key").length > 0;
  const conditions = new Set([
    "s3Action",
    "snsAction",
    "sqsAction",
    "dynamodbAction",
    "lambdaAction",
    ...(kms ? ["kmsKey"] : []),
  ]);
  const values = valuesOf(run);
  const allowed: string[] = [];
  const refused: string[] = [];
  const unused: string[] = [];
  let checked = 0;
  for (const role of ofType(run, T.role)) {
    const id = roleIdOf(run, role);
    if (id === undefined) continue;
    assert.deepEqual(trustedServices(role), [ROLE_SERVICES[id]], `${id} is trusted by its caller`);
    const docs = ofType(run, T.rolePolicy)
      .filter((p) => p.props.role === role.props.name)
      .map((p) => json(p.props.policy));
    const evaluate = createIamEvaluator(docs);
    const calls = RUN_TIME_CALLS.filter(
      (c) => c.role === id && c.when.every((w) => conditions.has(w)),
    );
    assert.ok(calls.length > 0, `the table has rows for ${id}`);
    for (const call of calls) {
      for (const req of requests(call, values)) {
        const e = evaluate(req);
        if (e.decision !== "allow")
          refused.push(
            `${id} ${req.action} ${req.resources.join(" ")}: ${describeIamEvaluation(e)}`,
          );
      }
      // Near misses: another topic, queue, table, bucket, folder, account or region.
      const fixed = Object.keys(values).filter(
        (p) => p !== "{partition}" && call.resources.some((r) => r.includes(p)),
      );
      for (const p of fixed) {
        const v = values[p];
        const misses =
          p === "{account}"
            ? ["210987654321"]
            : p === "{region}"
              ? ["eu-west-1"]
              : [`${v}-other`, `other-${v}`];
        for (const miss of misses) {
          for (const req of requests(call, { ...values, [p]: miss })) {
            checked++;
            if (evaluate(req).decision === "allow")
              allowed.push(`${id} ${req.action} ${req.resources.join(" ")}`);
          }
        }
      }
    }
    // Another folder of the same bucket is a near miss for the S3 action's key template.
    if (id === "rule-s3") {
      checked++;
      const e = evaluate({
        action: "s3:PutObject",
        resources: [`arn:aws:s3:::${values["{actionBucket}"]}/telemetry/2026/x`],
      });
      if (e.decision === "allow") allowed.push("rule-s3 s3:PutObject outside raw/");
    }
    const reqs = calls.flatMap((c) => requests(c, values));
    for (const s of docs.flatMap((d) => statements(d))) {
      for (const a of list(s.Action)) {
        for (const r of list(s.Resource)) {
          const used = reqs.some(
            (q) => actionMatches(a, q.action) && q.resources.some((x) => resourceMatches(r, x)),
          );
          if (!used) unused.push(`${id}: ${a} on ${r}`);
        }
      }
    }
  }
  assert.deepEqual(refused, [], "calls the action roles refuse");
  assert.ok(checked >= 20, `near misses checked: ${checked}`);
  assert.deepEqual(allowed, [], "near misses the action roles allow");
  assert.deepEqual(unused, [], "grants no call of the table needs");
}

describe("rule actions under mocks: each registered with its least-privilege role (core/iam/run-time-calls.ts)", () => {
  let run: ProgramRun;
  before(async () => {
    run = await build();
  });

  it("the topic rule carries each action in its list, the roles' ARNs and the destination's URL", () => {
    const rule = one(run, T.rule, (r) => r.props.name === RULE).props;
    const roleArn = (kind: string) =>
      one(run, T.role, (r) => r.name.endsWith(`-topic-rule-${RULE}-${kind}-role`)).props.arn;
    const sns = rule.sns as Array<Record<string, unknown>>;
    assert.deepEqual(sns, [
      {
        targetArn: `arn:aws:sns:us-east-1:${MOCK_ACCOUNT_ID}:ops-alerts`,
        messageFormat: "JSON",
        roleArn: roleArn("sns-2"),
      },
    ]);
    assert.deepEqual(rule.sqs, [
      {
        queueUrl: `https://sqs.us-east-1.amazonaws.com/${MOCK_ACCOUNT_ID}/readings`,
        useBase64: true,
        roleArn: roleArn("sqs-3"),
      },
    ]);
    assert.deepEqual(rule.s3, [
      {
        bucketName: one(run, "aws:s3/bucket:Bucket", (b) => b.name.endsWith("-delivery-bucket"))
          .props.bucket,
        key: "raw/${topic()}/${timestamp()}",
        roleArn: roleArn("s3-1"),
      },
    ]);
    assert.equal((rule.s3 as Array<Record<string, unknown>>)[0].cannedAcl, undefined);
    assert.deepEqual(rule.dynamodbv2s, [
      {
        putItem: { tableName: "readings" },
        roleArn: roleArn("dynamoDBv2-4"),
      },
    ]);
    assert.deepEqual(rule.https, [
      {
        url: `${HOOK}\${topic(2)}`,
        confirmationUrl: HOOK,
        httpHeaders: [{ key: "x-thing", value: "${topic(2)}" }],
      },
    ]);
    assert.deepEqual(rule.lambdas, [
      { functionArn: `arn:aws:lambda:us-east-1:${MOCK_ACCOUNT_ID}:function:${RULE}-log-event` },
    ]);
  });

  it("Lambda: no role for IoT; a permission for iot.amazonaws.com scoped to this rule's ARN and account", () => {
    const p = one(run, T.permission).props;
    assert.equal(p.action, "lambda:InvokeFunction");
    assert.equal(p.principal, "iot.amazonaws.com");
    assert.equal(p.function, `${RULE}-log-event`);
    assert.equal(p.sourceArn, `arn:aws:iot:us-east-1:${MOCK_ACCOUNT_ID}:rule/${RULE}`);
    assert.equal(p.sourceAccount, MOCK_ACCOUNT_ID);
    // The rule waits for the permission; the function for its log group and its role's grant.
    const rule = one(run, T.rule, (r) => r.props.name === RULE);
    assert.ok(rule.options.dependencies.includes(ofType(run, T.permission)[0].urn));
  });

  it("Lambda: the function is functions/log-event.ts bundled into index.js, on nodejs22.x, logging to its own group", () => {
    const fn = one(run, T.fn).props;
    assert.equal(fn.runtime, "nodejs22.x");
    assert.equal(fn.handler, "index.handler");
    assert.equal(fn.timeout, 3);
    one(run, T.logGroup, (g) => g.props.name === `/aws/lambda/${RULE}-log-event`);
  });

  it("DynamoDBv2: the stack creates the table the rule writes to, on demand, with the rule's keys", () => {
    const t = one(run, T.table).props;
    assert.equal(t.name, "readings");
    assert.equal(t.billingMode, "PAY_PER_REQUEST");
    assert.equal(t.hashKey, "thing");
    assert.equal(t.rangeKey, "ts");
    assert.deepEqual(t.attributes, [
      { name: "thing", type: "S" },
      { name: "ts", type: "N" },
    ]);
  });

  it("every action's role allows exactly its page's call on the ARN IAM sees, and no near miss", () => {
    checkRoles(run);
  });

  it("S3 into prod's bucket, which has a customer-managed key: kms:GenerateDataKey on that key, nothing else", async () => {
    const prod = await build("prod");
    assert.equal(ofType(prod, "aws:kms/key:Key").length, 1);
    checkRoles(prod);
  });
});

describe("rule actions refused at program time, each with a one-line reason", () => {
  it("HTTP: a destination the config does not mark confirmed", () => {
    assert.throws(
      () => new HttpAction({ url: `${HOOK}x`, confirmationUrl: HOOK, confirmed: false }),
      /the HTTP action.s destination https:\/\/hooks\.example\.com\/iot\/ is not confirmed; create it .* then set confirmed: true on the action/,
    );
  });

  it("HTTP: a url with a template and no confirmationUrl, or not beginning with it", () => {
    assert.throws(
      () => new HttpAction({ url: `${HOOK}\${topic()}`, confirmed: true }),
      /holds a substitution template, so confirmationUrl is required/,
    );
    assert.throws(
      () =>
        new HttpAction({
          url: "https://other.example.com/x",
          confirmationUrl: HOOK,
          confirmed: true,
        }),
      /does not begin with confirmationUrl/,
    );
  });

  it("HTTP: a local http:// endpoint, which only the local pipeline posts to", () => {
    assert.throws(
      () =>
        new HttpAction({
          url: "http://127.0.0.1:8080/x",
          confirmed: true,
        }),
      /only the local pipeline posts to; AWS IoT needs a public https:\/\/ endpoint/,
    );
  });

  it("S3: a canned ACL", () => {
    assert.throws(
      () =>
        new S3Action({
          bucketName: "b",
          bucketArn: "arn:aws:s3:::b",
          key: "k",
          cannedAcl: "public-read",
        } as unknown as ConstructorParameters<typeof S3Action>[0]),
      /a canned ACL is refused/,
    );
  });
});
