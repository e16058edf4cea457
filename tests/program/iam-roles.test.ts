// Every IAM role is exactly what docs/iam-roles.md says, row for row: the page is the spec (each
// row cites the AWS page that requires the action), the program is held to it. The table is parsed
// here, so neither the role nor its documentation can change alone.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { PROJECT_DIR } from "../../core/project";
import { MOCK_ACCOUNT_ID, runProgram, type ProgramRun } from "../../tools/mock-program";
import { json, list, ofType, one, statements, trustedServices } from "./helpers";

interface Row {
  readonly role: string;
  readonly trustedBy: string;
  readonly when: readonly string[];
  readonly actions: readonly string[];
  readonly resources: readonly string[];
  readonly page: string;
}

/** The rows of the table under "## Roles". */
function documentedRows(): Row[] {
  const text = fs.readFileSync(path.join(PROJECT_DIR, "docs", "iam-roles.md"), "utf8");
  const section = text.split(/^## Roles$/m)[1]?.split(/^## /m)[0] ?? "";
  const lines = section.split("\n").filter((l) => l.startsWith("| ") && !l.startsWith("| role"));
  const cells = (l: string) =>
    l
      .slice(1, -1)
      .split(" | ")
      .map((c) => c.trim());
  return lines.map((l) => {
    const [role, trustedBy, when, actions, resources, page] = cells(l);
    return {
      role,
      trustedBy,
      when: when.split(",").map((w) => w.trim()),
      actions: actions.split(",").map((a) => a.trim()),
      resources: [...resources.matchAll(/`([^`]+)`/g)].map((m) => m[1]),
      page,
    };
  });
}

const T = {
  role: "aws:iam/role:Role",
  firehose: "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream",
  kinesis: "aws:kinesis/stream:Stream",
  logGroup: "aws:cloudwatch/logGroup:LogGroup",
  logStream: "aws:cloudwatch/logStream:LogStream",
  app: "aws:kinesisanalyticsv2/application:Application",
  bucket: "aws:s3/bucket:Bucket",
  code: "aws:s3/bucketObjectv2:BucketObjectv2",
  key: "aws:kms/key:Key",
  glueDatabase: "aws:glue/catalogDatabase:CatalogDatabase",
  glueTable: "aws:glue/catalogTable:CatalogTable",
};

/** The stack's roles by the table's names, and the ARNs its placeholders stand for. */
function resolve(run: ProgramRun) {
  const c = run.config;
  const arn = (r: { props: Record<string, unknown> }) => r.props.arn as string;
  const firehose = (name: string) => one(run, T.firehose, (f) => f.props.name === name);
  const roleByArn = (a: unknown) => one(run, T.role, (r) => r.props.arn === a);
  const roleOf = (stream: ReturnType<typeof firehose>) =>
    roleByArn((stream.props.extendedS3Configuration as { roleArn: string }).roleArn);
  const logStreamIn = (group: string) =>
    ofType(run, T.logStream).find((s) => s.props.logGroupName === group);
  const bucket = one(run, T.bucket, (b) => b.name.endsWith("-delivery-bucket"));
  const delivery = firehose(c.delivery.streamName);
  const roles: Record<string, ReturnType<typeof one>> = {
    "rule-firehose": one(run, T.role, (r) => r.props.name === c.rule.roleName),
    "rule-errors": one(run, T.role, (r) => r.props.name === `${c.rule.roleName}-errors`),
    delivery: roleOf(delivery),
  };
  const placeholders: Record<string, string | undefined> = {
    "{delivery-stream}": arn(delivery),
    "{rule-error-log-group}": arn(
      one(run, T.logGroup, (g) => g.props.name === `/iot/rules/${c.rule.name}/errors`),
    ),
    "{bucket}": arn(bucket),
    "{logs}": `arn:aws:logs:${c.region}:${MOCK_ACCOUNT_ID}`,
    "{delivery-log-stream}": logStreamIn(`/aws/kinesisfirehose/${c.delivery.streamName}`)?.props
      .arn as string | undefined,
  };
  if (c.storage.kmsKey) placeholders["{data-key}"] = arn(one(run, T.key));
  if (c.lake.format === "parquet") {
    Object.assign(placeholders, {
      "{glue-catalog}": `arn:aws:glue:${c.region}:${MOCK_ACCOUNT_ID}:catalog`,
      "{glue-database}": arn(one(run, T.glueDatabase)),
      "{glue-table}": arn(one(run, T.glueTable)),
    });
  }
  if (c.monitoring.iotLogLevel !== "unmanaged") {
    roles["iot-logging"] = one(run, T.role, (r) => r.props.name === `${c.rule.roleName}-logging`);
    placeholders["{iot-log-group}"] =
      `arn:aws:logs:${c.region}:${MOCK_ACCOUNT_ID}:log-group:AWSIotLogsV2`;
  }
  if (c.analytics !== undefined) {
    const windows = firehose(`${c.delivery.streamName}-windows`);
    const app = one(run, T.app);
    roles["rule-kinesis"] = one(run, T.role, (r) => r.props.name === `${c.rule.roleName}-kinesis`);
    roles["windows-delivery"] = roleOf(windows);
    roles.flink = roleByArn(app.props.serviceExecutionRole);
    const flinkStream = one(run, T.logStream, (s) => s.name.includes("analytics-log-stream"));
    const flinkGroup = one(run, T.logGroup, (g) => g.name.includes("analytics-logs"));
    Object.assign(placeholders, {
      "{telemetry-kinesis}": arn(one(run, T.kinesis, (s) => s.name.includes("analytics-stream"))),
      "{windows-kinesis}": arn(one(run, T.kinesis, (s) => s.name.includes("windows-kinesis"))),
      "{windows-log-stream}": logStreamIn(`/aws/kinesisfirehose/${windows.props.name as string}`)
        ?.props.arn,
      "{flink-log-group}": arn(flinkGroup),
      "{flink-log-stream}": arn(flinkStream),
      "{code-object}": `${arn(bucket)}/${one(run, T.code).props.key as string}`,
    });
  }
  return { roles, placeholders };
}

/** `action on resource` pairs: what a role grants, or what the table says it must. */
function pairs(actions: readonly string[], resources: readonly string[]): string[] {
  return actions.flatMap((a) => resources.map((r) => `${a} on ${r}`));
}

for (const [stack, conditions] of [
  ["dev", ["always", "analytics"]],
  ["prod", ["always", "analytics", "errorLogging", "parquet", "kmsKey", "iotLogging"]],
] as const) {
  describe(`IAM roles of the ${stack} stack hold exactly what docs/iam-roles.md lists`, () => {
    let run: ProgramRun;
    let resolved: ReturnType<typeof resolve>;
    const rows = documentedRows();
    before(async () => {
      run = await runProgram(stack);
      resolved = resolve(run);
    });

    it("the table is well formed: every row names a role, actions, resources and an AWS page", () => {
      assert.ok(rows.length >= 15, `expected the table's rows, found ${rows.length}`);
      for (const r of rows) {
        assert.ok(
          r.actions.every((a) => /^[a-z0-9]+:[A-Za-z]+$/.test(a)),
          JSON.stringify(r),
        );
        assert.ok(r.resources.length > 0, `${r.role} ${r.actions.join()} names a resource`);
        assert.match(r.page, /\]\(https:\/\/(docs\.aws\.amazon\.com|github\.com\/apache)\//);
      }
    });

    it("the stack has exactly the table's roles, each trusted by the one service it names", () => {
      const applicable = rows.filter((r) => r.when.every((w) => conditions.includes(w as never)));
      const names = [...new Set(applicable.map((r) => r.role))].sort();
      assert.deepEqual(Object.keys(resolved.roles).sort(), names);
      assert.equal(ofType(run, T.role).length, names.length, "no role beside the table's");
      for (const name of names) {
        const trusted = [
          ...new Set(applicable.filter((r) => r.role === name).map((r) => r.trustedBy)),
        ];
        assert.deepEqual(trustedServices(resolved.roles[name]), trusted, `${name}'s trust`);
      }
    });

    for (const role of [...new Set(rows.map((r) => r.role))]) {
      it(`${role}: every granted action on every resource, nothing more, nothing less`, () => {
        const applicable = rows.filter(
          (r) => r.role === role && r.when.every((w) => conditions.includes(w as never)),
        );
        if (applicable.length === 0) {
          assert.equal(resolved.roles[role], undefined, `${stack} has no ${role} role`);
          return;
        }
        const expected = applicable
          .flatMap((r) =>
            pairs(
              r.actions,
              r.resources.map((res) =>
                res.replace(/\{[a-z-]+\}/g, (p) => {
                  const v = resolved.placeholders[p];
                  assert.ok(v !== undefined, `the ${stack} stack has no ${p}`);
                  return v;
                }),
              ),
            ),
          )
          .sort();
        const policies = ofType(run, "aws:iam/rolePolicy:RolePolicy").filter(
          (p) => p.props.role === resolved.roles[role].props.name,
        );
        assert.equal(policies.length, 1, `${role} has one inline grant`);
        const granted = statements(json(policies[0].props.policy))
          .flatMap((s) => {
            assert.equal(s.Condition, undefined, `${role}'s grants are unconditional`);
            return pairs(list(s.Action), list(s.Resource));
          })
          .sort();
        assert.deepEqual(granted, expected);
      });
    }
  });
}
