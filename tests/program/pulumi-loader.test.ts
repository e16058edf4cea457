// The program as `pulumi up` runs it: the Node language host starts the SDK's own entry point
// (@pulumi/pulumi/cmd/run) with --monitor/--engine, the stack's config in PULUMI_CONFIG and
// PULUMI_NODEJS_TYPESCRIPT=true (Pulumi.yaml's `typescript: true`), and the SDK's ts-node loads
// index.ts with type checking against tsconfig.json. Here the engine is a fake on loopback and
// AWS is mocked; the loader, the program and the wire protocol are the real ones, with no tsx.
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { FLEET_CHUNK } from "../../components/private/chunks";
import { PROJECT, PROJECT_DIR } from "../../core/project";
import { type RawConfig, readRawStackConfig } from "../../core/stack-config";
import { cliConfig, runProgram } from "../../tools/mock-program";
import { throwawayCsrDir } from "../../tools/make-csr";
import { tempDir } from "../helpers/temp";
import { type FakeEngine, startFakeEngine } from "../helpers/fake-engine";

const RUN = require.resolve("@pulumi/pulumi/cmd/run", { paths: [PROJECT_DIR] });

interface Launch {
  readonly code: number | null;
  readonly stderr: string;
  readonly engine: FakeEngine;
}

/** Starts `dir`'s program for `stack` the way the Node language host does, and waits for it. */
async function pulumiUp(dir: string, stack: string, config: Record<string, string>) {
  const region = config["aws:region"] ?? "us-east-1";
  const engine = await startFakeEngine(PROJECT, stack, region);
  const child = spawn(
    process.execPath,
    [
      RUN,
      `--monitor=${engine.address}`,
      `--engine=${engine.address}`,
      `--project=${PROJECT}`,
      `--stack=${stack}`,
      `--root-directory=${dir}`,
      `--pwd=${dir}`,
      ".",
    ],
    {
      cwd: dir,
      // Only what the language host sets: no tsx, no NODE_OPTIONS of the test runner.
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        PULUMI_NODEJS_TYPESCRIPT: "true",
        PULUMI_CONFIG: JSON.stringify(config),
        PULUMI_CONFIG_SECRET_KEYS: "[]",
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdout.on("data", (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  await engine.close();
  return { code, stderr, engine } satisfies Launch;
}

/**
 * What a deployable stack has besides its committed file (core/deploy-readiness.ts): the
 * connector jar (a local stand-in with its digest pinned, so nothing is downloaded), an address
 * for the alarms, and the devices' CSRs (here of throwaway keys).
 */
async function deployable(stack: string): Promise<RawConfig> {
  const dir = tempDir("pulumi-loader-jar");
  const jar = path.join(dir, "connector.jar");
  fs.writeFileSync(jar, "a stand-in connector jar\n");
  const sha512 = createHash("sha512").update(fs.readFileSync(jar)).digest("hex");
  const raw = readRawStackConfig(stack);
  return {
    ...raw,
    flinkConnectorUrl: pathToFileURL(jar).href,
    flinkConnectorSha512: sha512,
    alarmEmail: "ops@example.com",
    ...(raw.certificateMode === "csr"
      ? {
          csrDir: await throwawayCsrDir([
            "store-sensor-seattle1",
            "store-sensor-seattle2",
            "store-sensor-seattle3",
          ]),
        }
      : {}),
  };
}

describe("program: loaded as `pulumi up` loads it (SDK cmd/run, type-checking ts-node)", function () {
  // Type-checking the program against @pulumi/aws's typings takes a while on a shared machine.
  this.timeout(300_000);

  // fleet: the program bundles the pre-provisioning hook with esbuild under the real loader too.
  for (const stack of ["dev", "prod", "fleet"]) {
    it(`${stack}: registers the same resources and outputs as the mocked build`, async () => {
      const raw = await deployable(stack);
      const up = await pulumiUp(PROJECT_DIR, stack, cliConfig(raw));
      assert.equal(up.code, 0, `cmd/run exited ${up.code}:\n${up.stderr}\n${up.engine.logs}`);
      const expected = await runProgram(stack, { overrides: raw });
      const custom = (rs: { type: string; name: string; custom: boolean }[]) =>
        rs
          .filter((r) => r.custom)
          .map((r) => `${r.type} ${r.name}`)
          .sort();
      assert.deepEqual(custom(up.engine.resources), custom(expected.resources));
      const outputs = up.engine.stackOutputs();
      assert.ok(outputs, "the program registered its stack outputs");
      assert.deepEqual(Object.keys(outputs).sort(), Object.keys(expected.outputs).sort());
      assert.equal(outputs.ruleName, "sensor_rule");
      assert.deepEqual(outputs.thingNames, expected.outputs.thingNames);
    });
  }

  it("registers the stack config's further rules, every action kind of the rules framework, as the mocked build does", async () => {
    const raw = {
      ...(await deployable("dev")),
      rules: [
        {
          name: "hot",
          sql: "SELECT topic(2) AS thing, temperature FROM 'SeattleStoreTemp/+' WHERE temperature > 15",
          actions: [
            {
              republish: {
                topic: "alerts/${topic(2)}",
                qos: 1,
                headers: { contentType: "application/json" },
              },
            },
            {
              cloudwatchMetric: {
                metricNamespace: "Loader/Test",
                metricName: "Hot",
                metricValue: "${temperature}",
                metricUnit: "None",
                alarm: { threshold: 20, statistic: "Maximum" },
              },
            },
            {
              cloudwatchAlarm: {
                alarmName: "iot-pipeline-dev-hot-Hot",
                stateValue: "ALARM",
                stateReason: "${temperature}",
              },
            },
          ],
          errorAction: { republish: { topic: "errors/hot" } },
        },
      ],
    };
    const up = await pulumiUp(PROJECT_DIR, "dev", cliConfig(raw));
    assert.equal(up.code, 0, `cmd/run exited ${up.code}:\n${up.stderr}\n${up.engine.logs}`);
    const expected = await runProgram("dev", { overrides: raw });
    const custom = (rs: { type: string; name: string; custom: boolean }[]) =>
      rs
        .filter((r) => r.custom)
        .map((r) => `${r.type} ${r.name}`)
        .sort();
    assert.deepEqual(custom(up.engine.resources), custom(expected.resources));
    const hot = up.engine.resources.filter((r) => r.name.startsWith("iot-pipeline-topic-rule-hot"));
    assert.deepEqual(hot.map((r) => `${r.type} ${r.name}`).sort(), [
      "aws:cloudwatch/metricAlarm:MetricAlarm iot-pipeline-topic-rule-hot-cloudwatchMetric-1-alarm",
      "aws:iam/role:Role iot-pipeline-topic-rule-hot-cloudwatchAlarm-2-role",
      "aws:iam/role:Role iot-pipeline-topic-rule-hot-cloudwatchMetric-1-role",
      "aws:iam/role:Role iot-pipeline-topic-rule-hot-errors-role",
      "aws:iam/role:Role iot-pipeline-topic-rule-hot-republish-0-role",
      "aws:iam/rolePolicy:RolePolicy iot-pipeline-topic-rule-hot-cloudwatchAlarm-2-role-policy",
      "aws:iam/rolePolicy:RolePolicy iot-pipeline-topic-rule-hot-cloudwatchMetric-1-role-policy",
      "aws:iam/rolePolicy:RolePolicy iot-pipeline-topic-rule-hot-errors-role-policy",
      "aws:iam/rolePolicy:RolePolicy iot-pipeline-topic-rule-hot-republish-0-role-policy",
      "aws:iot/topicRule:TopicRule iot-pipeline-topic-rule-hot-rule",
      "iot-pipeline:rule:TopicRule iot-pipeline-topic-rule-hot",
    ]);
  });

  it("dev with a rule of every new action (Lambda, S3, SNS, SQS, DynamoDBv2, HTTP) registers what the mocked build does", async () => {
    // The Lambda action bundles functions/log-event.ts with esbuild under the real loader too.
    const raw = {
      ...(await deployable("dev")),
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
    };
    const up = await pulumiUp(PROJECT_DIR, "dev", cliConfig(raw));
    assert.equal(up.code, 0, `cmd/run exited ${up.code}:\n${up.stderr}\n${up.engine.logs}`);
    const expected = await runProgram("dev", { overrides: raw });
    const custom = (rs: { type: string; name: string; custom: boolean }[]) =>
      rs
        .filter((r) => r.custom)
        .map((r) => `${r.type} ${r.name}`)
        .sort();
    assert.deepEqual(custom(up.engine.resources), custom(expected.resources));
    for (const type of [
      "aws:lambda/function:Function",
      "aws:lambda/permission:Permission",
      "aws:dynamodb/table:Table",
    ]) {
      assert.equal(up.engine.resources.filter((r) => r.type === type).length, 1, type);
    }
  });

  it("registers a fleet larger than one chunk, made over several turns of the event loop", async () => {
    // Past FLEET_CHUNK things the fleet is made a chunk at a time after the program's module has
    // run (components/private/chunks.ts): the SDK must still wait for all of it before the outputs.
    const count = FLEET_CHUNK + 10;
    const raw = {
      ...(await deployable("dev")),
      fleet: [{ group: "Big", thingPrefix: "big-", count }],
    };
    const up = await pulumiUp(PROJECT_DIR, "dev", cliConfig(raw));
    assert.equal(up.code, 0, `cmd/run exited ${up.code}:\n${up.stderr}\n${up.engine.logs}`);
    const of = (type: string) => up.engine.resources.filter((r) => r.type === type).length;
    assert.equal(of("aws:iot/thing:Thing"), count);
    assert.equal(of("aws:iot/thingPrincipalAttachment:ThingPrincipalAttachment"), count);
    const outputs = up.engine.stackOutputs();
    assert.ok(outputs, "the program registered its stack outputs");
    assert.equal((outputs.thingNames as string[]).length, count);
    assert.equal(Object.keys(outputs.certificateArns as object).length, count);
  });

  it("prod as a fresh clone has it (no CSRs, no alarm address, no pinned jar) stops in one line saying what to run", async () => {
    // csrDir: an empty folder, as csr/prod is in a fresh clone (the CSRs are not committed).
    const raw = { ...readRawStackConfig("prod"), csrDir: tempDir("pulumi-loader-no-csr") };
    const up = await pulumiUp(PROJECT_DIR, "prod", cliConfig(raw));
    assert.notEqual(up.code, 0);
    const said = up.engine.logs.join("\n");
    assert.match(
      said,
      /^stack prod: no CSR for 3 device\(s\) \(.*\); run `npm run csr -- --stack prod` on the machine that keeps the devices' keys, then preview again \(and 2 more: see npm run check -- --stack prod\)$/m,
    );
    assert.doesNotMatch(said + up.stderr, /at readDeployableConfig/, "no stack trace");
    assert.equal(up.engine.resources.filter((r) => r.custom).length, 0);
  });

  it("a connector jar whose digest is not the pinned one stops the deployment, naming both digests", async () => {
    const raw = { ...(await deployable("dev")), flinkConnectorSha512: "0".repeat(128) };
    const up = await pulumiUp(PROJECT_DIR, "dev", cliConfig(raw));
    assert.notEqual(up.code, 0);
    assert.match(
      up.engine.logs.join("\n") + up.stderr,
      /the Flink connector jar from file:\S+ has SHA-512 [0-9a-f]{128}, not the pinned 0{128}/,
    );
  });

  it("type-checks what it loads: a type error stops the program before any resource", async () => {
    // A copy of the project whose program has one type error: the same loader must refuse it.
    const dir = tempDir("pulumi-loader");
    for (const f of ["Pulumi.yaml", "Pulumi.dev.yaml", "package.json", "tsconfig.json"]) {
      fs.copyFileSync(path.join(PROJECT_DIR, f), path.join(dir, f));
    }
    fs.symlinkSync(path.join(PROJECT_DIR, "node_modules"), path.join(dir, "node_modules"));
    fs.writeFileSync(
      path.join(dir, "index.ts"),
      'import * as pulumi from "@pulumi/pulumi";\nexport const n: number = pulumi.getStack();\n',
    );
    const up = await pulumiUp(dir, "dev", cliConfig(readRawStackConfig("dev")));
    assert.notEqual(up.code, 0, "a program with a type error must not run");
    assert.match(up.stderr + up.engine.logs.join("\n"), /TS2322/);
    assert.equal(up.engine.resources.filter((r) => r.custom).length, 0);
  });
});
