// The real pack: policypack/index.ts started the way `pulumi preview --policy-pack` starts it
// (cwd = the pack, PULUMI_NODEJS_STACK set), then asked over gRPC what the engine asks.
import * as assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
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
import { tutorialPolicy } from "../../core/iot-policy";

const PACK_DIR = path.join(__dirname, "..", "..", "policypack");

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

describe("the policy pack served to the engine", function () {
  this.timeout(60000);
  let child: ChildProcess;
  let client: AnalyzerClient;

  before(async () => {
    // A dev stack, as the CLI says through the environment of the pack's process.
    child = spawn(process.execPath, ["--import", "tsx", "index.ts"], {
      cwd: PACK_DIR,
      env: { ...process.env, PULUMI_NODEJS_STACK: "dev" },
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
      child.on("exit", (code) => reject(new Error(`pack exited ${code}: ${stderr}`)));
    });
    client = new AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  });

  after(() => {
    client?.close();
    child?.kill();
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

  it("lists the twelve policies with their levels", async () => {
    const info = await call<Empty, AnalyzerInfo>(client.getAnalyzerInfo.bind(client), new Empty());
    assert.equal(info.getName(), "iot-pipeline-guardrails");
    const levels = Object.fromEntries(
      info.getPoliciesList().map((p) => [p.getName(), LEVEL_NAMES.get(p.getEnforcementlevel())]),
    );
    assert.equal(Object.keys(levels).length, 12);
    assert.equal(levels["iot-policy-no-allow-all"], "mandatory");
    assert.equal(levels["iot-policy-no-allow-all-in-dev"], "advisory");
  });

  it("reports the tutorial policy as advisory in the dev stack it was started for", async () => {
    assert.deepEqual(await analyzeTutorial(), ["advisory iot-policy-no-allow-all-in-dev"]);
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
