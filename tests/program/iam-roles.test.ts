// Every IAM role is exactly what docs/iam-roles.md says, row for row: the page is the spec (each
// row cites the AWS page that requires the action), the program is held to it. The table is parsed
// here, so neither the role nor its documentation can change alone.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { PROJECT_DIR } from "../../core/project";
import { hookRequired } from "../../core/provisioning";
import { listStacks, type StackConfig } from "../../core/stack-config";
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

/** The table rows of a section of docs/iam-roles.md, as cells. */
function tableRows(heading: string): string[][] {
  const text = fs.readFileSync(path.join(PROJECT_DIR, "docs", "iam-roles.md"), "utf8");
  const section = text.split(new RegExp(`^## ${heading}$`, "m"))[1]?.split(/^## /m)[0] ?? "";
  const lines = section.split("\n").filter((l) => l.startsWith("| ") && !l.startsWith("| role"));
  return lines.map((l) =>
    l
      .slice(1, -1)
      .split(" | ")
      .map((c) => c.trim()),
  );
}

/** A managed policy a role must have attached, and when. */
interface ManagedRow {
  readonly role: string;
  readonly trustedBy: string;
  readonly when: readonly string[];
  readonly policyArn: string;
  readonly page: string;
}

/** The rows of the table under "## Managed policies". */
function documentedManagedRows(): ManagedRow[] {
  return tableRows("Managed policies").map(([role, trustedBy, when, policy, page]) => ({
    role,
    trustedBy,
    when: when.split(",").map((w) => w.trim()),
    policyArn: /`([^`]+)`/.exec(policy)?.[1] ?? policy,
    page,
  }));
}

/** The rows of the table under "## Roles". */
function documentedRows(): Row[] {
  return tableRows("Roles").map((cells) => {
    const l = cells;
    const [role, trustedBy, when, actions, resources, page] = l;
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
  template: "aws:iot/provisioningTemplate:ProvisioningTemplate",
  lambda: "aws:lambda/function:Function",
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
  if (c.provisioning !== undefined) {
    roles.provisioning = roleByArn(one(run, T.template).props.provisioningRoleArn);
    if (hookRequired(c.provisioning)) {
      const fn = one(run, T.lambda);
      placeholders["{fleet-things}"] =
        `arn:aws:iot:${c.region}:${MOCK_ACCOUNT_ID}:thing/${c.provisioning.thingPrefix}*`;
      roles["provisioning-hook"] = roleByArn(fn.props.role);
      placeholders["{hook-log-group}"] = arn(
        one(run, T.logGroup, (g) => g.props.name === `/aws/lambda/${fn.props.name as string}`),
      );
    }
  }
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

/** The table's `when` conditions a stack's config meets. */
function conditionsOf(c: StackConfig): string[] {
  return [
    "always",
    ...(c.analytics !== undefined ? ["analytics"] : []),
    ...(c.delivery.errorLogging ? ["errorLogging"] : []),
    ...(c.lake.format === "parquet" ? ["parquet"] : []),
    ...(c.storage.kmsKey ? ["kmsKey"] : []),
    ...(c.monitoring.iotLogLevel !== "unmanaged" ? ["iotLogging"] : []),
    ...(c.provisioning !== undefined ? ["fleetProvisioning"] : []),
    ...(c.provisioning !== undefined && hookRequired(c.provisioning) ? ["hook"] : []),
    ...(c.provisioning?.allowReprovisioning === false ? ["noReprovisioning"] : []),
  ];
}

for (const stack of listStacks()) {
  describe(`IAM roles of the ${stack} stack hold exactly what docs/iam-roles.md lists`, () => {
    let run: ProgramRun;
    let resolved: ReturnType<typeof resolve>;
    let conditions: string[] = [];
    const rows = documentedRows();
    const managed = documentedManagedRows();
    const applies = (when: readonly string[]) => when.every((w) => conditions.includes(w));
    before(async () => {
      run = await runProgram(stack);
      resolved = resolve(run);
      conditions = conditionsOf(run.config);
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

    it("the stack has exactly the tables' roles, each trusted by the one service it names", () => {
      const applicable = [
        ...rows.filter((r) => applies(r.when)),
        ...managed.filter((r) => applies(r.when)),
      ];
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

    it("every managed policy attachment is the table's, nothing more, nothing less", () => {
      assert.ok(managed.length >= 1, "the managed policies table has rows");
      for (const r of managed) {
        assert.match(
          r.policyArn,
          /^arn:aws:iam::aws:policy\//,
          `${r.role}'s policy is AWS-managed`,
        );
        assert.match(r.page, /\]\(https:\/\/docs\.aws\.amazon\.com\//);
      }
      const nameOf = new Map(Object.entries(resolved.roles).map(([k, v]) => [v.props.name, k]));
      const attached = ofType(run, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        .map(
          (a) =>
            `${nameOf.get(a.props.role) ?? `(role ${String(a.props.role)})`} ${String(a.props.policyArn)}`,
        )
        .concat(
          ofType(run, T.role).flatMap((r) =>
            ((r.props.managedPolicyArns ?? []) as string[]).map(
              (p) => `${nameOf.get(r.props.name)} ${p}`,
            ),
          ),
        )
        .sort();
      const expected = managed
        .filter((r) => applies(r.when))
        .map((r) => `${r.role} ${r.policyArn}`)
        .sort();
      assert.deepEqual(attached, expected);
    });

    for (const role of [...new Set([...rows, ...managed].map((r) => r.role))]) {
      it(`${role}: every granted action on every resource, nothing more, nothing less`, () => {
        const applicable = rows.filter((r) => r.role === role && applies(r.when));
        if (applicable.length === 0) {
          const policies = ofType(run, "aws:iam/rolePolicy:RolePolicy").filter(
            (p) => p.props.role === resolved.roles[role]?.props.name,
          );
          if (!managed.some((r) => r.role === role && applies(r.when))) {
            assert.equal(resolved.roles[role], undefined, `${stack} has no ${role} role`);
          }
          assert.deepEqual(policies, [], `${role} has no inline grant`);
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
