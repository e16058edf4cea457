import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import * as pulumi from "@pulumi/pulumi";
import { CONNECTOR_URL, FLINK_RUNTIME, MAIN_PY, PARTITION_KEY } from "../../components/analytics";
import { ConfigError } from "../../core/errors";
import { flinkSqlStatements } from "../../core/analytics/window";
import {
  MOCK_ACCOUNT_ID,
  registeredSoFar,
  runProgram,
  type ProgramRun,
  type RegisteredResource,
} from "../../tools/mock-program";

interface Statement {
  Sid?: string;
  Effect: string;
  Action: string[];
  Resource: string[];
  Condition?: unknown;
}

function only(run: ProgramRun, type: string, nameIncludes = ""): RegisteredResource {
  const found = run.resources.filter((r) => r.type === type && r.name.includes(nameIncludes));
  assert.equal(
    found.length,
    1,
    `one ${type} named *${nameIncludes}*, got ${found.map((r) => r.name).join(", ")}`,
  );
  return found[0];
}

function statements(policy: RegisteredResource): Statement[] {
  return (JSON.parse(policy.inputs.policy as string) as { Statement: Statement[] }).Statement;
}

/** The policy attached to a role, found through the role's name in the policy's `role` input. */
function policyOf(run: ProgramRun, role: RegisteredResource): RegisteredResource {
  const found = run.resources.filter(
    (r) => r.type === "aws:iam/rolePolicy:RolePolicy" && r.inputs.role === role.props.name,
  );
  assert.equal(found.length, 1, `one inline policy on ${role.name}`);
  return found[0];
}

describe("StreamAnalytics in the program under mocks (dev stack)", () => {
  let run: ProgramRun;
  before(async () => {
    run = await runProgram("dev");
  });

  const bucket = `iot-pipeline-dev-${MOCK_ACCOUNT_ID}-us-east-1`;

  it("an on-demand, encrypted Kinesis Data Stream", () => {
    const stream = only(run, "aws:kinesis/stream:Stream", "analytics-stream");
    assert.deepEqual(stream.inputs.streamModeDetails, { streamMode: "ON_DEMAND" });
    assert.equal(stream.inputs.shardCount, undefined, "on-demand streams take no shard count");
    assert.equal(stream.inputs.encryptionType, "KMS");
  });

  it("the topic rule's second action puts each message on it, keyed by thing, with PutRecord only", () => {
    const stream = only(run, "aws:kinesis/stream:Stream", "analytics-stream");
    const rule = only(run, "aws:iot/topicRule:TopicRule");
    const firehoses = rule.inputs.firehoses as unknown[];
    assert.equal(firehoses.length, 1, "the Firehose action stays");
    const kineses = rule.inputs.kineses as Array<Record<string, unknown>>;
    assert.equal(kineses.length, 1);
    assert.equal(kineses[0].streamName, stream.props.name);
    assert.equal(kineses[0].partitionKey, PARTITION_KEY);
    assert.equal(PARTITION_KEY, "${thing}");

    const role = run.resources.find(
      (r) => r.type === "aws:iam/role:Role" && r.props.arn === kineses[0].roleArn,
    );
    assert.ok(role, "the action's role is registered");
    assert.match(role.inputs.assumeRolePolicy as string, /"Service":"iot\.amazonaws\.com"/);
    assert.deepEqual(statements(policyOf(run, role)), [
      {
        Sid: "PutRecord",
        Effect: "Allow",
        Action: ["kinesis:PutRecord"],
        Resource: [stream.props.arn],
      },
    ]);
  });

  it("a FLINK-1_20 application that starts, logs to CloudWatch and runs main.py with the pinned jar", () => {
    const app = only(run, "aws:kinesisanalyticsv2/application:Application");
    assert.equal(app.inputs.runtimeEnvironment, FLINK_RUNTIME);
    assert.equal(FLINK_RUNTIME, "FLINK-1_20");
    assert.equal(app.inputs.startApplication, true);
    const logStream = only(run, "aws:cloudwatch/logStream:LogStream", "analytics");
    assert.deepEqual(app.inputs.cloudwatchLoggingOptions, { logStreamArn: logStream.props.arn });

    const config = app.inputs.applicationConfiguration as {
      applicationCodeConfiguration: Record<string, unknown>;
      environmentProperties: {
        propertyGroups: Array<{ propertyGroupId: string; propertyMap: Record<string, string> }>;
      };
    };
    const code = only(run, "aws:s3/bucketObjectv2:BucketObjectv2", "analytics");
    assert.deepEqual(config.applicationCodeConfiguration, {
      codeContentType: "ZIPFILE",
      codeContent: {
        s3ContentLocation: { bucketArn: `arn:aws:s3:::${bucket}`, fileKey: code.inputs.key },
      },
    });
    const groups = Object.fromEntries(
      config.environmentProperties.propertyGroups.map((g) => [g.propertyGroupId, g.propertyMap]),
    );
    assert.deepEqual(groups["kinesis.analytics.flink.run.options"], {
      python: "main.py",
      jarfile: "lib/flink-sql-connector-kinesis-5.0.0-1.20.jar",
    });
  });

  it("the sql.statements property group holds the statements generated for this stream and bucket", () => {
    const app = only(run, "aws:kinesisanalyticsv2/application:Application");
    const stream = only(run, "aws:kinesis/stream:Stream", "analytics-stream");
    const groups = (
      app.inputs.applicationConfiguration as {
        environmentProperties: {
          propertyGroups: Array<{ propertyGroupId: string; propertyMap: Record<string, string> }>;
        };
      }
    ).environmentProperties.propertyGroups;
    const sql = groups.find((g) => g.propertyGroupId === "sql.statements");
    assert.ok(sql);
    const spec = run.config.analytics;
    assert.ok(spec);
    const windows = only(run, "aws:kinesis/stream:Stream", "windows-kinesis");
    const expected = flinkSqlStatements(spec, {
      sourceStreamArn: stream.props.arn as string,
      sinkStreamArn: windows.props.arn as string,
      region: "us-east-1",
    });
    assert.deepEqual(sql.propertyMap, {
      "statement.0": expected[0],
      "statement.1": expected[1],
      "statement.2": expected[2],
    });
    assert.match(expected[1], new RegExp(`'stream.arn' = '${windows.props.arn as string}'`));
  });

  it("the code zip is built from the repository's main.py and the verified jar on this machine, not a RemoteAsset", async () => {
    const code = only(run, "aws:s3/bucketObjectv2:BucketObjectv2", "analytics");
    assert.equal(code.inputs.bucket, bucket);
    assert.match(code.inputs.key as string, /^flink-code\/stream-analytics-[0-9a-f]{16}\.zip$/);
    const archive = code.inputs.source as pulumi.asset.AssetArchive;
    assert.ok(pulumi.asset.AssetArchive.isInstance(archive), "the source is an archive");
    const assets = await archive.assets;
    assert.deepEqual(Object.keys(assets).sort(), [
      "lib/flink-sql-connector-kinesis-5.0.0-1.20.jar",
      "main.py",
    ]);
    assert.equal(await (assets["main.py"] as pulumi.asset.FileAsset).path, MAIN_PY);
    const jar = assets["lib/flink-sql-connector-kinesis-5.0.0-1.20.jar"];
    // A RemoteAsset would be fetched unchecked at every preview and up.
    // (Asset.isInstance is true of every asset: the class is what tells them apart.)
    assert.ok(!(jar instanceof pulumi.asset.RemoteAsset), "the jar is not a RemoteAsset");
    assert.ok(jar instanceof pulumi.asset.FileAsset, "the jar is a FileAsset of the verified copy");
    // Under mocks: the run's local stand-in, verified against its own digest like a real jar.
    const runConfig = run.config.flinkConnector;
    assert.equal(await jar.path, fileURLToPath(runConfig.url ?? ""));
    assert.equal(
      CONNECTOR_URL,
      "https://repo1.maven.org/maven2/org/apache/flink/flink-sql-connector-kinesis/5.0.0-1.20/flink-sql-connector-kinesis-5.0.0-1.20.jar",
    );
  });

  it("the windows reach the bucket through a Firehose stream reading the windows stream", () => {
    const windows = only(run, "aws:kinesis/stream:Stream", "windows-kinesis");
    assert.deepEqual(windows.inputs.streamModeDetails, { streamMode: "ON_DEMAND" });
    assert.equal(windows.inputs.encryptionType, "KMS");
    const delivery = only(
      run,
      "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream",
      "analytics-windows",
    );
    assert.equal(delivery.inputs.name, "weather-data-stream-windows");
    const source = delivery.inputs.kinesisSourceConfiguration as Record<string, unknown>;
    assert.equal(source.kinesisStreamArn, windows.props.arn);
    const s3 = delivery.inputs.extendedS3Configuration as Record<string, unknown>;
    assert.equal(s3.bucketArn, `arn:aws:s3:::${bucket}`);
    assert.equal(s3.prefix, "analytics/");
    assert.equal(s3.errorOutputPrefix, "errors/analytics/");
    assert.deepEqual(s3.processingConfiguration, {
      enabled: true,
      processors: [{ type: "AppendDelimiterToRecord" }],
    });
    // The same role reads the source stream and writes the bucket (Firehose uses one role).
    assert.equal(source.roleArn, s3.roleArn);
  });

  it("the application's role: trusted by Managed Flink, limited to its streams, its code and its logs", () => {
    const app = only(run, "aws:kinesisanalyticsv2/application:Application");
    const role = run.resources.find(
      (r) => r.type === "aws:iam/role:Role" && r.props.arn === app.inputs.serviceExecutionRole,
    );
    assert.ok(role);
    assert.deepEqual(JSON.parse(role.inputs.assumeRolePolicy as string), {
      Version: "2012-10-17",
      Statement: [
        {
          Effect: "Allow",
          Principal: { Service: "kinesisanalytics.amazonaws.com" },
          Action: "sts:AssumeRole",
          Condition: { StringEquals: { "aws:SourceAccount": MOCK_ACCOUNT_ID } },
        },
      ],
    });
    const stream = only(run, "aws:kinesis/stream:Stream", "analytics-stream");
    const windows = only(run, "aws:kinesis/stream:Stream", "windows-kinesis");
    const code = only(run, "aws:s3/bucketObjectv2:BucketObjectv2", "analytics");
    const logGroup = only(run, "aws:cloudwatch/logGroup:LogGroup", "analytics-logs");
    const logStream = only(run, "aws:cloudwatch/logStream:LogStream", "analytics");
    const grants = statements(policyOf(run, role));
    const bySid: Record<string, Statement> = Object.fromEntries(grants.map((s) => [s.Sid, s]));
    assert.deepEqual(Object.keys(bySid).sort(), [
      "ListLogGroups",
      "ListLogStreams",
      "ReadApplicationCode",
      "ReadTelemetryStream",
      "WriteLogs",
      "WriteWindows",
    ]);
    assert.deepEqual(bySid.ReadTelemetryStream.Resource, [stream.props.arn]);
    assert.ok(
      bySid.ReadTelemetryStream.Action.every((a) => /^kinesis:(Describe|List|Get)/.test(a)),
    );
    assert.deepEqual(bySid.ReadApplicationCode.Resource, [
      `arn:aws:s3:::${bucket}/${code.inputs.key}`,
    ]);
    // The code location names no object version, so GetObject alone reads it.
    assert.deepEqual(bySid.ReadApplicationCode.Action, ["s3:GetObject"]);
    assert.deepEqual(bySid.WriteWindows.Resource, [windows.props.arn]);
    assert.deepEqual(bySid.WriteWindows.Action, ["kinesis:PutRecords"]);
    assert.deepEqual(bySid.ListLogGroups.Resource, [
      `arn:aws:logs:us-east-1:${MOCK_ACCOUNT_ID}:log-group:*`,
    ]);
    // DescribeLogStreams is a group-level action: the group's ARN with the trailing `:*`.
    assert.deepEqual(bySid.ListLogStreams.Resource, [`${logGroup.props.arn}:*`]);
    assert.deepEqual(bySid.WriteLogs.Resource, [logStream.props.arn]);
    // Nothing else: no write to the bucket at all (Firehose delivers the windows), no * resource.
    for (const s of grants) {
      for (const r of s.Resource) assert.notEqual(r, "*", `${s.Sid} is not on *`);
      assert.ok(!s.Action.some((a) => /^s3:(Put|Delete)/.test(a)), `${s.Sid} writes no object`);
    }
  });

  it("the application is created after its role's grant and its code", () => {
    const app = only(run, "aws:kinesisanalyticsv2/application:Application");
    const role = run.resources.find(
      (r) => r.type === "aws:iam/role:Role" && r.props.arn === app.inputs.serviceExecutionRole,
    );
    assert.ok(role);
    const deps = app.options.dependencies;
    assert.ok(deps.includes(policyOf(run, role).urn), "depends on the role policy");
    assert.ok(
      deps.includes(only(run, "aws:s3/bucketObjectv2:BucketObjectv2", "analytics").urn),
      "depends on the code object",
    );
  });

  it("exports the stream, application and windows location", () => {
    const stream = only(run, "aws:kinesis/stream:Stream", "analytics-stream");
    assert.deepEqual(run.outputs.analytics, {
      streamName: stream.props.name,
      windowsStreamName: only(run, "aws:kinesis/stream:Stream", "windows-kinesis").props.name,
      windowsDeliveryName: "weather-data-stream-windows",
      applicationName: only(run, "aws:kinesisanalyticsv2/application:Application").props.name,
      applicationArn: only(run, "aws:kinesisanalyticsv2/application:Application").props.arn,
      windowsUri: `s3://${bucket}/analytics/`,
    });
  });

  it("main.py runs exactly these statements from these properties (stand-in pyflink)", () => {
    const app = only(run, "aws:kinesisanalyticsv2/application:Application");
    const groups = (
      app.inputs.applicationConfiguration as {
        environmentProperties: {
          propertyGroups: Array<{ propertyGroupId: string; propertyMap: Record<string, string> }>;
        };
      }
    ).environmentProperties.propertyGroups;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flink-props-"));
    try {
      // The file Managed Flink writes from the property groups: PropertyGroupId / PropertyMap.
      const props = path.join(dir, "application_properties.json");
      fs.writeFileSync(
        props,
        JSON.stringify(
          groups.map((g) => ({ PropertyGroupId: g.propertyGroupId, PropertyMap: g.propertyMap })),
        ),
      );
      const log = path.join(dir, "standin.jsonl");
      execFileSync("python3", [MAIN_PY], {
        env: {
          ...process.env,
          APPLICATION_PROPERTIES_FILE: props,
          PYFLINK_STANDIN_LOG: log,
          PYTHONPATH: path.join(__dirname, "fixtures"),
          IS_LOCAL: "",
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      const calls = fs
        .readFileSync(log, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const sql = groups.find((g) => g.propertyGroupId === "sql.statements")?.propertyMap ?? {};
      assert.deepEqual(calls, [
        { create: "streaming" },
        { set: ["table.local-time-zone", "UTC"] },
        { execute_sql: sql["statement.0"] },
        { execute_sql: sql["statement.1"] },
        { execute_sql: sql["statement.2"] },
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("StreamAnalytics switched by the config", () => {
  it("analytics disabled: no stream, no application, a rule with the Firehose action only", async () => {
    const run = await runProgram("dev", { overrides: { analytics: { enabled: false } } });
    assert.equal(run.resources.filter((r) => r.type === "aws:kinesis/stream:Stream").length, 0);
    assert.equal(
      run.resources.filter((r) => r.type === "aws:kinesisanalyticsv2/application:Application")
        .length,
      0,
    );
    assert.equal(only(run, "aws:iot/topicRule:TopicRule").inputs.kineses, undefined);
    assert.equal(run.outputs.analytics, undefined);
  });

  it("grouped by thing on event time (prod): the generated SQL says so", async () => {
    const run = await runProgram("prod", {
      overrides: {
        analytics: {
          windowSeconds: 60,
          time: "event",
          watermarkSeconds: 10,
          groupBy: ["thing"],
          aggregates: [{ fn: "AVG", field: "temperature", as: "avg_temp" }],
        },
      },
    });
    const app = only(run, "aws:kinesisanalyticsv2/application:Application");
    const map = (
      app.inputs.applicationConfiguration as {
        environmentProperties: {
          propertyGroups: Array<{ propertyGroupId: string; propertyMap: Record<string, string> }>;
        };
      }
    ).environmentProperties.propertyGroups.find(
      (g) => g.propertyGroupId === "sql.statements",
    )?.propertyMap;
    assert.ok(map);
    assert.match(map["statement.0"], /WATERMARK FOR `ts` AS `ts` - INTERVAL '10' SECOND/);
    assert.match(
      map["statement.2"],
      /INTERVAL '60' SECONDS\)\)\nGROUP BY window_start, window_end, `thing`$/,
    );
  });

  it("a bad window spec fails before any resource is registered, in one line", async () => {
    await assert.rejects(
      runProgram("dev", {
        overrides: {
          analytics: {
            windowSeconds: 10,
            aggregates: [{ fn: "MAX", field: "max_temperature" }],
            groupBy: ["city"],
          },
        },
      }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.match(e.message, /analytics\.groupBy\[0\] = "city" is invalid/);
        assert.ok(!e.message.includes("\n"));
        return true;
      },
    );
    assert.deepEqual(registeredSoFar(), []);
  });
});
