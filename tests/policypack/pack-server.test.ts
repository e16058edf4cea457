// The real pack as `pulumi preview --policy-pack DIR` starts it: the Node language host runs
// DIR/node_modules/@pulumi/pulumi/cmd/run-policy-pack with the working directory DIR, whose ts-node
// type-checks every TypeScript file the pack loads against DIR/tsconfig.json; the pack prints its
// gRPC port, and the engine asks it what it asks over gRPC. Twice: the pack in this repository, and
// the published form (npm run policypack:build) alone in a folder outside the repository.
import * as assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { AnalyzerClient } from "@pulumi/pulumi/proto/analyzer_grpc_pb";
import {
  AnalyzeRequest,
  type AnalyzeResponse,
  type AnalyzerInfo,
  AnalyzerResourceOptions,
  ConfigureAnalyzerRequest,
  EnforcementLevel,
  PolicyConfig,
} from "@pulumi/pulumi/proto/analyzer_pb";
import { tutorialPolicy } from "../../core/iot-policy/policy";
import { buildPolicyPack, PACK_DIR } from "../../tools/build-policypack";
import { tempDir } from "../helpers/temp";
import { type FakeEngine, startFakeEngine } from "../helpers/fake-engine";

const RUN_POLICY_PACK = path.join("node_modules", "@pulumi", "pulumi", "cmd", "run-policy-pack");

// The generated JS enum has no reverse mapping, so name the levels here.
const LEVEL_NAMES = new Map<number, string>([
  [EnforcementLevel.ADVISORY, "advisory"],
  [EnforcementLevel.MANDATORY, "mandatory"],
  [EnforcementLevel.DISABLED, "disabled"],
  [EnforcementLevel.REMEDIATE, "remediate"],
]);

function call<Req, Res>(
  fn: (req: Req, cb: (err: grpc.ServiceError | null, res: Res) => void) => unknown,
  req: Req,
): Promise<Res> {
  return new Promise((resolve, reject) =>
    fn(req, (err, res) => (err ? reject(err) : resolve(res))),
  );
}

/** Starts a pack folder as the language host does; resolves with the port it prints. */
async function startPack(dir: string, engine: FakeEngine): Promise<[ChildProcess, string]> {
  const runner = path.join(dir, RUN_POLICY_PACK);
  assert.ok(
    fs.existsSync(runner),
    `${runner} is missing: install the pack's own dependencies (npm install --prefix policypack; npm test does it first)`,
  );
  // No tsx and none of the test runner's NODE_OPTIONS: only what the language host gives the pack,
  // the stack the CLI previews (dev) among it.
  const child = spawn(process.execPath, [RUN_POLICY_PACK, engine.address, "."], {
    cwd: dir,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PULUMI_NODEJS_STACK: "dev" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const port = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /^(\d+)\n/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on("exit", (code) =>
      reject(new Error(`the pack exited ${code} before printing its port:\n${stderr}${out}`)),
    );
  });
  return [child, port];
}

/** The published pack, alone in a folder outside the repository, with its declared dependencies. */
async function publishedPack(): Promise<string> {
  const dir = path.join(tempDir("published-pack"), "policypack");
  await buildPolicyPack(dir);
  // Its node_modules holds exactly what its package.json declares, at the versions the pack
  // locks: the pack's own installed dependencies.
  fs.symlinkSync(path.join(PACK_DIR, "node_modules"), path.join(dir, "node_modules"));
  return dir;
}

const FORMS: Array<[string, () => Promise<string>]> = [
  ["the pack in this repository (policypack/)", async () => PACK_DIR],
  ["the published pack (npm run policypack:build), outside the repository", publishedPack],
];

for (const [form, folder] of FORMS) {
  describe(`policy pack served to the engine: ${form}`, function () {
    // ts-node type-checks the pack and the core it imports when it starts.
    this.timeout(180_000);
    let engine: FakeEngine;
    let child: ChildProcess | undefined;
    let client: AnalyzerClient;
    let dir: string;

    before(async () => {
      dir = await folder();
      engine = await startFakeEngine("iot-pipeline", "dev", "us-east-1");
      let port: string;
      [child, port] = await startPack(dir, engine);
      client = new AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    });

    after(async () => {
      client?.close();
      child?.kill();
      await engine?.close();
    });

    const analyzeTutorial = async () => {
      const req = new AnalyzeRequest();
      req.setType("aws:iot/policy:Policy");
      req.setName("sensor-policy");
      req.setUrn("urn:pulumi:dev::iot-pipeline::aws:iot/policy:Policy::sensor-policy");
      req.setProperties(
        Struct.fromJavaScript({ name: "sensor-policy", policy: JSON.stringify(tutorialPolicy()) }),
      );
      req.setOptions(new AnalyzerResourceOptions());
      const res = await call<AnalyzeRequest, AnalyzeResponse>(client.analyze.bind(client), req);
      return res
        .getDiagnosticsList()
        .map((d) => `${LEVEL_NAMES.get(d.getEnforcementlevel())} ${d.getPolicyname()}`);
    };

    it("lists the twenty-six policies with their levels", async () => {
      const info = await call<Empty, AnalyzerInfo>(
        client.getAnalyzerInfo.bind(client),
        new Empty(),
      );
      assert.equal(info.getName(), "iot-pipeline-guardrails");
      const levels = Object.fromEntries(
        info.getPoliciesList().map((p) => [p.getName(), LEVEL_NAMES.get(p.getEnforcementlevel())]),
      );
      assert.equal(Object.keys(levels).length, 26);
      assert.equal(levels["iot-policy-shadow-own-thing-only"], "mandatory");
      assert.equal(levels["iot-topic-rule-republish-topic"], "mandatory");
      assert.equal(levels["sns-alarm-topic-subscribed"], "advisory");
      assert.equal(levels["iot-policy-no-allow-all"], "mandatory");
      assert.equal(levels["iot-policy-no-allow-all-in-dev"], "advisory");
    });

    it("reports the tutorial policy as advisory in the dev stack it was started for", async () => {
      assert.deepEqual(await analyzeTutorial(), ["advisory iot-policy-no-allow-all-in-dev"]);
    });

    it("parses IoT SQL in the pack (the grammar travels with it)", async () => {
      const req = new AnalyzeRequest();
      req.setType("aws:iot/topicRule:TopicRule");
      req.setName("sensor_rule");
      req.setUrn("urn:pulumi:dev::iot-pipeline::aws:iot/topicRule:TopicRule::sensor_rule");
      req.setProperties(
        Struct.fromJavaScript({
          name: "sensor_rule",
          sqlVersion: "2016-03-23",
          sql: "SELECT * FROM SeattleStoreTemp",
        }),
      );
      req.setOptions(new AnalyzerResourceOptions());
      const res = await call<AnalyzeRequest, AnalyzeResponse>(client.analyze.bind(client), req);
      const messages = res.getDiagnosticsList().map((d) => d.getMessage());
      assert.equal(messages.length, 1, messages.join("\n"));
      assert.match(messages[0], /FROM must name a quoted topic filter.*line 1, column 15/);
    });

    it("reports it as mandatory once the pack config says dev is not a dev stack", async () => {
      const req = new ConfigureAnalyzerRequest();
      for (const [name, level] of [
        ["iot-policy-no-allow-all", EnforcementLevel.MANDATORY],
        ["iot-policy-no-allow-all-in-dev", EnforcementLevel.ADVISORY],
      ] as const) {
        const c = new PolicyConfig();
        c.setEnforcementlevel(level);
        c.setProperties(Struct.fromJavaScript({ devStacks: ["sandbox"] }));
        req.getPolicyconfigMap().set(name, c);
      }
      await call(client.configure.bind(client), req);
      assert.deepEqual(await analyzeTutorial(), ["mandatory iot-policy-no-allow-all"]);
    });
  });
}
