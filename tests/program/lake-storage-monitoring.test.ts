// The lake, storage and monitoring resources under mocks: each new resource with the settings its
// stack choice gives it, for dev, prod and single choices turned on or off.
import { strict as assert } from "node:assert";
import { runProgram, type ProgramRun } from "../../tools/mock-program";
import { json, ofType, one, statements } from "./helpers";

const T = {
  bucket: "aws:s3/bucket:Bucket",
  ownership: "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
  versioning: "aws:s3/bucketVersioning:BucketVersioning",
  lifecycle: "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
  policy: "aws:s3/bucketPolicy:BucketPolicy",
  logging: "aws:s3/bucketLogging:BucketLogging",
  encryption:
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
  key: "aws:kms/key:Key",
  alias: "aws:kms/alias:Alias",
  database: "aws:glue/catalogDatabase:CatalogDatabase",
  table: "aws:glue/catalogTable:CatalogTable",
  workgroup: "aws:athena/workgroup:Workgroup",
  namedQuery: "aws:athena/namedQuery:NamedQuery",
  firehose: "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream",
  loggingOptions: "aws:iot/loggingOptions:LoggingOptions",
  topic: "aws:sns/topic:Topic",
  subscription: "aws:sns/topicSubscription:TopicSubscription",
  alarm: "aws:cloudwatch/metricAlarm:MetricAlarm",
  dashboard: "aws:cloudwatch/dashboard:Dashboard",
  metricFilter: "aws:cloudwatch/logMetricFilter:LogMetricFilter",
};

const dataBucket = (run: ProgramRun) =>
  one(run, T.bucket, (b) => b.name.endsWith("-delivery-bucket"));
const telemetry = (run: ProgramRun) =>
  one(run, T.firehose, (f) => f.props.name === "weather-data-stream").props
    .extendedS3Configuration as Record<string, unknown>;

describe("components: the lake (Glue table, Athena workgroup, saved queries)", function () {
  this.timeout(60000);
  let dev: ProgramRun;
  let prod: ProgramRun;
  before(async () => {
    dev = await runProgram("dev");
    prod = await runProgram("prod");
  });

  it("dev: a JSON table over telemetry/ partitioned by datehour, columns from the schema", () => {
    const table = one(dev, T.table);
    assert.equal(table.props.name, "telemetry");
    assert.equal(table.props.databaseName, "iot_pipeline_dev");
    const sd = table.props.storageDescriptor as Record<string, unknown>;
    assert.equal(sd.location, `s3://${dataBucket(dev).props.bucket as string}/telemetry/`);
    assert.equal(
      (sd.serDeInfo as { serializationLibrary: string }).serializationLibrary,
      "org.openx.data.jsonserde.JsonSerDe",
    );
    assert.deepEqual(
      (sd.columns as { name: string; type: string }[]).map((c) => `${c.name} ${c.type}`),
      [
        "thing string",
        "timestamp bigint",
        "temperature double",
        "max_temperature double",
        "min_temperature double",
        "humidity double",
        "precipitation double",
        "wind double",
        "weather string",
      ],
    );
    assert.deepEqual(table.props.partitionKeys, [{ name: "datehour", type: "string" }]);
    const params = table.props.parameters as Record<string, string>;
    assert.equal(params["projection.enabled"], "true");
    assert.equal(params["projection.device.type"], undefined);
    // JSON stays JSON: no conversion, no partitioning.
    const s3 = telemetry(dev);
    assert.equal(s3.dataFormatConversionConfiguration, undefined);
    assert.equal(s3.dynamicPartitioningConfiguration, undefined);
    assert.equal(s3.prefix, "telemetry/");
  });

  it("prod: a Parquet table partitioned by device and datehour, the stream converting through it", () => {
    const table = one(prod, T.table);
    const sd = table.props.storageDescriptor as Record<string, unknown>;
    assert.equal(
      (sd.serDeInfo as { serializationLibrary: string }).serializationLibrary,
      "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
    );
    assert.deepEqual(
      (table.props.partitionKeys as { name: string }[]).map((p) => p.name),
      ["device", "datehour"],
    );
    const params = table.props.parameters as Record<string, string>;
    assert.equal(
      params["projection.device.values"],
      "store-sensor-seattle1,store-sensor-seattle2,store-sensor-seattle3",
    );
    const s3 = telemetry(prod);
    const conversion = s3.dataFormatConversionConfiguration as {
      schemaConfiguration: { databaseName: string; tableName: string };
    };
    assert.deepEqual(
      [conversion.schemaConfiguration.databaseName, conversion.schemaConfiguration.tableName],
      ["iot_pipeline_prod", "telemetry"],
    );
    assert.deepEqual(s3.dynamicPartitioningConfiguration, { enabled: true });
    assert.equal(s3.fileExtension, ".parquet");
    assert.match(s3.prefix as string, /^telemetry\/device=!\{partitionKeyFromQuery:thing\}\//);
  });

  it("a workgroup that enforces its results location under athena-results/, and three saved queries", () => {
    const wg = one(dev, T.workgroup);
    const conf = wg.props.configuration as {
      enforceWorkgroupConfiguration: boolean;
      resultConfiguration: {
        outputLocation: string;
        encryptionConfiguration: { encryptionOption: string };
      };
    };
    assert.equal(conf.enforceWorkgroupConfiguration, true);
    assert.equal(
      conf.resultConfiguration.outputLocation,
      `s3://${dataBucket(dev).props.bucket as string}/athena-results/`,
    );
    assert.equal(conf.resultConfiguration.encryptionConfiguration.encryptionOption, "SSE_S3");
    const prodConf = one(prod, T.workgroup).props.configuration as typeof conf;
    assert.equal(prodConf.resultConfiguration.encryptionConfiguration.encryptionOption, "SSE_KMS");
    assert.deepEqual(
      ofType(dev, T.namedQuery)
        .map((q) => q.props.name)
        .sort(),
      ["latest-reading-per-thing", "readings-per-hour", "window-min-max"],
    );
    for (const q of ofType(dev, T.namedQuery)) {
      assert.equal(q.props.database, "iot_pipeline_dev");
      assert.equal(q.props.workgroup, "iot-pipeline-dev");
    }
  });
});

describe("components: storage an auditor accepts", function () {
  this.timeout(60000);

  it("dev: ownership enforced, versioning, a 7-day lifecycle, the TLS-only policy, no key, no access logs", async () => {
    const run = await runProgram("dev");
    const bucket = dataBucket(run).props.bucket;
    assert.deepEqual(one(run, T.ownership).props.rule, { objectOwnership: "BucketOwnerEnforced" });
    assert.deepEqual(one(run, T.versioning).props.versioningConfiguration, { status: "Enabled" });
    const rules = one(run, T.lifecycle).props.rules as {
      filter: { prefix: string };
      expiration?: { days: number };
    }[];
    assert.deepEqual(
      rules.filter((r) => r.filter.prefix === "telemetry/").map((r) => r.expiration),
      [{ days: 7 }],
    );
    assert.ok(
      !rules.some((r) => r.filter.prefix === "" || r.filter.prefix.startsWith("flink-code")),
    );
    const policy = json(one(run, T.policy).props.policy);
    assert.deepEqual(statements(policy)[0], {
      Sid: "DenyInsecureTransport",
      Effect: "Deny",
      Principal: "*",
      Action: "s3:*",
      Resource: [`arn:aws:s3:::${bucket as string}`, `arn:aws:s3:::${bucket as string}/*`],
      Condition: { Bool: { "aws:SecureTransport": "false" } },
    });
    assert.equal(ofType(run, T.key).length, 0);
    assert.equal(ofType(run, T.logging).length, 0);
    // The stream encrypts itself with an AWS-owned key (Direct PUT).
    const stream = one(run, T.firehose, (f) => f.props.name === "weather-data-stream");
    assert.deepEqual(stream.props.serverSideEncryption, {
      enabled: true,
      keyType: "AWS_OWNED_CMK",
    });
  });

  it("prod: a rotated customer-managed key for the bucket, the stream, the topic and Athena", async () => {
    const run = await runProgram("prod");
    const key = one(run, T.key);
    assert.equal(key.props.enableKeyRotation, true);
    const keyPolicy = json(key.props.policy);
    assert.ok(
      statements(keyPolicy).some(
        (s) =>
          (s.Principal as { Service?: string } | undefined)?.Service === "cloudwatch.amazonaws.com",
      ),
      "CloudWatch may use the key to publish to the encrypted topic",
    );
    assert.equal(one(run, T.alias).props.name, "alias/iot-pipeline-prod");
    const sse = one(run, T.encryption, (e) => e.props.bucket === dataBucket(run).props.bucket).props
      .rules as {
      applyServerSideEncryptionByDefault: Record<string, unknown>;
      bucketKeyEnabled: boolean;
    }[];
    assert.deepEqual(sse[0], {
      applyServerSideEncryptionByDefault: {
        sseAlgorithm: "aws:kms",
        kmsMasterKeyId: key.props.arn,
      },
      bucketKeyEnabled: true,
    });
    const stream = one(run, T.firehose, (f) => f.props.name === "weather-data-stream");
    assert.deepEqual(stream.props.serverSideEncryption, {
      enabled: true,
      keyType: "CUSTOMER_MANAGED_CMK",
      keyArn: key.props.arn,
    });
    assert.equal(one(run, T.topic).props.kmsMasterKeyId, key.props.arn);
  });

  it("prod: access logs to a log bucket that is itself private, encrypted, TLS-only and expiring", async () => {
    const run = await runProgram("prod");
    const logs = one(run, T.bucket, (b) => b.name.endsWith("-access-logs"));
    const logging = one(run, T.logging);
    assert.equal(logging.props.bucket, dataBucket(run).props.bucket);
    assert.equal(logging.props.targetBucket, logs.props.bucket);
    assert.equal(logging.props.targetPrefix, "access-logs/");
    const policy = json(
      one(run, T.policy, (p) => p.props.bucket === logs.props.bucket).props.policy,
    );
    const sids = statements(policy).map((s) => (s as { Sid?: string }).Sid);
    assert.deepEqual(sids, ["DenyInsecureTransport", "S3ServerAccessLogsPolicy"]);
    const logSse = one(run, T.encryption, (e) => e.props.bucket === logs.props.bucket).props
      .rules as {
      applyServerSideEncryptionByDefault: { sseAlgorithm: string };
    }[];
    assert.equal(logSse[0].applyServerSideEncryptionByDefault.sseAlgorithm, "AES256");
    const logRules = one(run, T.lifecycle, (l) => l.props.bucket === logs.props.bucket).props
      .rules as { expiration: { days: number } }[];
    assert.deepEqual(logRules[0].expiration, { days: 365 });
  });

  it("versioning off and no lifecycle when the config says so", async () => {
    const run = await runProgram("dev", {
      overrides: { versioning: false, transitionDays: 0, expirationDays: 0 },
    });
    assert.equal(ofType(run, T.versioning).length, 0);
    const rules = one(run, T.lifecycle).props.rules as { filter: { prefix: string } }[];
    // Only Athena's scratch results still expire.
    assert.deepEqual(
      rules.map((r) => r.filter.prefix),
      ["athena-results/"],
    );
  });
});

describe("components: IoT logging and the alarms", function () {
  this.timeout(60000);

  it("dev leaves the account's IoT logging alone and has no alarms", async () => {
    const run = await runProgram("dev");
    for (const t of [T.loggingOptions, T.topic, T.alarm, T.dashboard, T.metricFilter]) {
      assert.equal(ofType(run, t).length, 0, t);
    }
  });

  it("prod logs at WARN through its own role", async () => {
    const run = await runProgram("prod");
    const options = one(run, T.loggingOptions);
    assert.equal(options.props.defaultLogLevel, "WARN");
    assert.equal(options.props.disableAllLogs, false);
    const role = one(run, "aws:iam/role:Role", (r) => r.props.arn === options.props.roleArn);
    assert.equal(role.props.name, "iot-weather-data-role-logging");
  });

  it("prod: the rule's error rate, each stream's freshness and Flink's downtime, all notifying the topic", async () => {
    const run = await runProgram("prod");
    const topic = one(run, T.topic);
    // The telemetry pipeline's alarms; prod's alerts rule has two of its own (its error rate, its
    // metric's alarm: tests/program/topic-rules.test.ts).
    const alarms = ofType(run, T.alarm).filter((a) => !String(a.props.name).includes("-alerts-"));
    assert.deepEqual(alarms.map((a) => a.props.name).sort(), [
      "iot-pipeline-prod-flink-downtime",
      "iot-pipeline-prod-rule-error-rate",
      "iot-pipeline-prod-telemetry-delivery-freshness",
      "iot-pipeline-prod-windows-delivery-freshness",
    ]);
    for (const a of alarms)
      assert.deepEqual(a.props.alarmActions, [topic.props.arn], String(a.props.name));

    const rate = alarms.find((a) => a.props.name === "iot-pipeline-prod-rule-error-rate");
    assert.equal(rate?.props.threshold, 1);
    const queries = rate?.props.metricQueries as {
      id: string;
      expression?: string;
      metric?: Record<string, unknown>;
    }[];
    assert.equal(
      queries.find((q) => q.id === "rate")?.expression,
      "100 * FILL(errors, 0) / messages",
    );
    assert.deepEqual(queries.find((q) => q.id === "messages")?.metric, {
      namespace: "AWS/IoT",
      metricName: "TopicMatch",
      dimensions: { RuleName: "sensor_rule" },
      stat: "Sum",
      period: 300,
    });
    const filter = one(run, T.metricFilter, (f) => f.name === "iot-pipeline-alarms-rule-errors");
    assert.equal(filter.props.logGroupName, "/iot/rules/sensor_rule/errors");
    assert.equal(filter.props.pattern, '{ $.ruleName = "sensor_rule" }');

    const fresh = alarms.find(
      (a) => a.props.name === "iot-pipeline-prod-telemetry-delivery-freshness",
    );
    assert.equal(fresh?.props.metricName, "DeliveryToS3.DataFreshness");
    assert.equal(fresh?.props.namespace, "AWS/Firehose");
    assert.equal(fresh?.props.statistic, "Maximum");
    assert.equal(fresh?.props.threshold, 900);
    assert.deepEqual(fresh?.props.dimensions, { DeliveryStreamName: "weather-data-stream" });

    const down = alarms.find((a) => a.props.name === "iot-pipeline-prod-flink-downtime");
    const app = one(run, "aws:kinesisanalyticsv2/application:Application");
    assert.deepEqual(down?.props.dimensions, { Application: app.props.name });
    assert.equal(down?.props.metricName, "downtime");

    const board = JSON.parse(one(run, T.dashboard).props.dashboardBody as string) as {
      widgets: { properties: { title: string } }[];
    };
    assert.deepEqual(
      board.widgets.map((w) => w.properties.title),
      [
        "Messages in (MQTT publishes accepted)",
        "Rule sensor_rule: matches and errors",
        "Records delivered to S3",
        "Delivery freshness (s)",
        "Window output (windows delivered) and Flink downtime",
      ],
    );
    assert.equal(ofType(run, T.subscription).length, 0, "no e-mail configured");
  });

  it("an alarm e-mail subscribes to the topic; thresholds come from the config", async () => {
    const run = await runProgram("prod", {
      overrides: { alarmEmail: "ops@example.com", ruleErrorRatePercent: 5, alarmPeriodSeconds: 60 },
    });
    const sub = one(run, T.subscription);
    assert.equal(sub.props.protocol, "email");
    assert.equal(sub.props.endpoint, "ops@example.com");
    const rate = one(run, T.alarm, (a) => a.props.name === "iot-pipeline-prod-rule-error-rate");
    assert.equal(rate.props.threshold, 5);
  });

  it("DISABLED manages the account's logging and turns it off", async () => {
    const run = await runProgram("prod", { overrides: { iotLogLevel: "DISABLED" } });
    const options = one(run, T.loggingOptions);
    assert.equal(options.props.disableAllLogs, true);
  });

  it("without analytics there is no windows stream or Flink to watch", async () => {
    const run = await runProgram("prod", { overrides: { analytics: { enabled: false } } });
    assert.deepEqual(
      ofType(run, T.alarm)
        .filter((a) => !String(a.props.name).includes("-alerts-"))
        .map((a) => a.props.name)
        .sort(),
      ["iot-pipeline-prod-rule-error-rate", "iot-pipeline-prod-telemetry-delivery-freshness"],
    );
  });
});
