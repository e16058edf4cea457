// The provisioning API's answers to requests a device should not make (local/provisioning/provisioning.ts): every
// malformed or unsupported CSR gets a rejection on `.../rejected`, a flooding connection is throttled
// without starving the others, and re-provisioning a known serial is refused unless the stack allows
// it. Requests go straight to LocalProvisioning.onPublish, as the broker hands them over.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  loadStackConfig,
  parseStackConfig,
  readRawStackConfig,
  type StackConfig,
} from "../../core/stack-config";
import { makeCsr } from "../../device/provisioner";
import { LocalAuthorizer } from "../../local/broker/authorizer";
import type { ClientIdentity } from "../../local/broker/broker";
import { ensurePki } from "../../local/identity/ca";
import { CLAIM_IDENTITY, LocalProvisioning } from "../../local/provisioning/provisioning";
import {
  DEFAULT_PROVISIONING_LIMITS,
  type ProvisioningLimits,
} from "../../local/provisioning/provisioning-limits";
import { PROJECT_DIR } from "../../core/project";
import { tempDir } from "../helpers/temp";

const CSR_TOPIC = "$aws/certificates/create-from-csr/json";
const REGISTER_TOPIC = "$aws/provisioning-templates/sensor-fleet/provision/json";

interface Answer {
  clientId: string;
  topic: string;
  body: Record<string, unknown>;
}

async function openApi(
  name: string,
  opts: {
    config?: StackConfig;
    now?: () => number;
    stateDir?: string;
    limits?: ProvisioningLimits;
  } = {},
) {
  const config = opts.config ?? loadStackConfig("fleet");
  const dir = opts.stateDir ?? tempDir(name);
  const pkiDir = path.join(dir, "pki");
  await ensurePki(pkiDir, [CLAIM_IDENTITY]);
  const answers: Answer[] = [];
  const log: string[] = [];
  const api = await LocalProvisioning.open({
    config,
    pkiDir,
    stateDir: dir,
    authorizer: new LocalAuthorizer(config),
    now: opts.now,
    limits: opts.limits,
    log: (l) => log.push(l),
    onResponse: (clientId, topic, body) =>
      answers.push({ clientId, topic, body: body as Record<string, unknown> }),
  });
  return { api, answers, log, dir };
}

const claim = (clientId: string): ClientIdentity => ({
  clientId,
  thingName: CLAIM_IDENTITY,
  kind: "claim",
  certificateId: "c".repeat(64),
});

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

describe("CreateCertificateFromCsr: every unsupported or malformed CSR is rejected", function () {
  this.timeout(30_000);
  const fixtures = path.join(PROJECT_DIR, "tests", "fixtures", "csr-unsupported");

  // https://docs.aws.amazon.com/iot/latest/developerguide/x509-client-certs.html: RSA of at least
  // 2048 bits or NIST P-256, P-384, P-521; certificate signing with SHA-256/384/512.
  for (const [file, why] of [
    ["p192.csr", /curve prime192v1/],
    ["secp256k1.csr", /curve secp256k1/],
    ["brainpoolP256r1.csr", /curve brainpoolP256r1/],
    ["ed25519.csr", /ed25519/],
    ["rsa1024.csr", /1024 bits/],
    ["p256-sha1.csr", /SHA-1/],
  ] as const) {
    it(`${file}: 400 InvalidCsr on .../rejected, and the next request is answered`, async () => {
      const { api, answers } = await openApi(`csr-${file}`);
      const pem = fs.readFileSync(path.join(fixtures, file), "utf8");
      await api.onPublish(claim("claim-1"), CSR_TOPIC, json({ certificateSigningRequest: pem }));
      assert.equal(answers.length, 1, "the request was answered");
      assert.equal(answers[0].topic, `${CSR_TOPIC}/rejected`);
      assert.equal(answers[0].body.statusCode, 400);
      assert.equal(answers[0].body.errorCode, "InvalidCsr");
      assert.match(String(answers[0].body.errorMessage), why);
      // A retrying device gets the same answer, not a closed connection; a good CSR still works.
      const { csrPem } = await makeCsr("1");
      await api.onPublish(claim("claim-1"), CSR_TOPIC, json({ certificateSigningRequest: csrPem }));
      assert.equal(answers[1].topic, `${CSR_TOPIC}/accepted`);
    });
  }

  it("armour around garbage, a truncated request, a flipped signature byte: InvalidCsr each", async () => {
    const { api, answers } = await openApi("csr-malformed");
    const { csrPem } = await makeCsr("1");
    const body = csrPem.split("\n").slice(1, -2).join("");
    const der = Buffer.from(body, "base64");
    const flipped = Buffer.from(der);
    flipped[flipped.length - 3] ^= 0x01;
    const pem = (b: Buffer) =>
      `-----BEGIN CERTIFICATE REQUEST-----\n${b.toString("base64").replace(/(.{64})/g, "$1\n")}\n-----END CERTIFICATE REQUEST-----\n`;
    const cases = [
      fs.readFileSync(
        path.join(PROJECT_DIR, "tests/fixtures/armoured-garbage-csr/store-sensor-seattle1.csr"),
        "utf8",
      ),
      pem(der.subarray(0, der.length - 10)),
      pem(flipped),
    ];
    for (const c of cases) {
      await api.onPublish(claim("claim-1"), CSR_TOPIC, json({ certificateSigningRequest: c }));
    }
    assert.deepEqual(
      answers.map((a) => [a.topic.split("/").pop(), a.body.errorCode]),
      cases.map(() => ["rejected", "InvalidCsr"]),
    );
  });
});

describe("a claim connection that floods the API (fleet-provision-api.html error payload)", function () {
  this.timeout(120_000);

  it("10,020 CreateCertificateFromCsr in 28.5 s on one connection: it is throttled, another device provisions, memory stays bounded", async () => {
    let now = Date.parse("2026-01-01T00:00:00Z");
    const { api, answers, log } = await openApi("flood", { now: () => now });
    const { csrPem } = await makeCsr("flood");
    const request = json({ certificateSigningRequest: csrPem });
    const flooder = claim("claim-flood");
    const rssBefore = process.memoryUsage().rss;
    for (let i = 0; i < 10_020; i++) {
      now += 28_500 / 10_020;
      await api.onPublish(flooder, CSR_TOPIC, request);
    }
    const rssAfter = process.memoryUsage().rss;
    const flood = answers.filter((a) => a.clientId === "claim-flood");
    assert.equal(flood.length, 10_020, "every request got an answer");
    const throttled = flood.filter((a) => a.body.errorCode === "Throttling");
    // The connection's bucket: 10 at once, then 1 per second for 28.5 s.
    assert.ok(throttled.length >= 10_020 - 40, `${throttled.length} throttled`);
    for (const t of throttled.slice(0, 3)) {
      assert.equal(t.topic, `${CSR_TOPIC}/rejected`);
      assert.deepEqual(Object.keys(t.body).sort(), ["errorCode", "errorMessage", "statusCode"]);
      assert.equal(t.body.statusCode, 429);
    }
    assert.equal(api.stats.throttled, throttled.length);
    assert.ok(
      api.pendingCount <= 4,
      `${api.pendingCount} pending certificates (at most 4 per connection)`,
    );
    assert.ok(
      log.filter((l) => /Throttling/.test(l)).length <= 3,
      "a flood is a log line, not one per request",
    );

    // A legitimate device on another connection, during the flood, provisions at once.
    const device = claim("claim-7");
    const { csrPem: deviceCsr } = await makeCsr("7");
    await api.onPublish(device, CSR_TOPIC, json({ certificateSigningRequest: deviceCsr }));
    const created = answers[answers.length - 1];
    assert.equal(created.topic, `${CSR_TOPIC}/accepted`);
    await api.onPublish(
      device,
      REGISTER_TOPIC,
      json({
        certificateOwnershipToken: created.body.certificateOwnershipToken,
        parameters: { SerialNumber: "1" },
      }),
    );
    assert.equal(answers[answers.length - 1].topic, `${REGISTER_TOPIC}/accepted`);
    console.log(
      `      flood: ${throttled.length} throttled of 10,020, ${api.pendingCount} pending, RSS ${(rssBefore / 2 ** 20).toFixed(0)} -> ${(rssAfter / 2 ** 20).toFixed(0)} MiB`,
    );
  });

  it("a connection's newest pending certificate replaces its oldest; the total is bounded too; the hour still expires them", async () => {
    let now = Date.parse("2026-01-01T00:00:00Z");
    const { api, answers } = await openApi("pending", {
      now: () => now,
      limits: { ...DEFAULT_PROVISIONING_LIMITS, pendingTotal: 5 },
    });
    const { csrPem } = await makeCsr("p");
    const request = json({ certificateSigningRequest: csrPem });
    for (let i = 0; i < 6; i++) {
      now += 2_000; // within the connection's rate
      await api.onPublish(claim("claim-a"), CSR_TOPIC, request);
    }
    assert.equal(api.pendingCount, 4);
    assert.equal(api.stats.pendingReplaced, 2);
    // The first token was replaced: RegisterThing with it is refused; the newest one works.
    const tokens = answers.map((a) => a.body.certificateOwnershipToken);
    await api.onPublish(
      claim("claim-a"),
      REGISTER_TOPIC,
      json({ certificateOwnershipToken: tokens[0], parameters: { SerialNumber: "1" } }),
    );
    assert.equal(answers[6].body.errorCode, "InvalidCertificateOwnershipToken");
    // Two more connections: past the total of 5, the oldest (claim-a's) goes.
    await api.onPublish(claim("claim-b"), CSR_TOPIC, request);
    await api.onPublish(claim("claim-c"), CSR_TOPIC, request);
    assert.equal(api.pendingCount, 5);
    assert.equal(api.stats.pendingReplaced, 3);
    now += 3_600_001;
    await api.onPublish(claim("claim-b"), CSR_TOPIC, request);
    assert.equal(api.pendingCount, 1, "claim-a's certificates expired after the hour");
  });
});

describe("re-provisioning a known serial (pre-provisioning-hook.html, provision-template.html#override-settings)", function () {
  this.timeout(60_000);

  /** CreateCertificateFromCsr then RegisterThing for a serial on one claim connection. */
  async function provision(
    api: LocalProvisioning,
    answers: Answer[],
    clientId: string,
    serial: string,
  ) {
    const { csrPem } = await makeCsr(serial);
    await api.onPublish(claim(clientId), CSR_TOPIC, json({ certificateSigningRequest: csrPem }));
    const token = answers[answers.length - 1].body.certificateOwnershipToken;
    await api.onPublish(
      claim(clientId),
      REGISTER_TOPIC,
      json({ certificateOwnershipToken: token, parameters: { SerialNumber: serial } }),
    );
    return answers[answers.length - 1];
  }

  const withProvisioning = (p: Record<string, unknown>): StackConfig => {
    const raw = readRawStackConfig("fleet");
    return parseStackConfig(
      { ...raw, provisioning: { ...(raw.provisioning as object), ...p } },
      "fleet",
    );
  };

  it("by default the hook refuses a serial whose thing exists: 403 ACCESS_DENIED, and no certificate for that thing", async () => {
    const { api, answers } = await openApi("reprovision-off");
    assert.equal(
      (await provision(api, answers, "claim-1", "1")).topic,
      `${REGISTER_TOPIC}/accepted`,
    );
    const again = await provision(api, answers, "claim-attacker", "1");
    assert.equal(again.topic, `${REGISTER_TOPIC}/rejected`);
    assert.equal(again.body.statusCode, 403);
    assert.equal(again.body.errorCode, "ACCESS_DENIED");
    assert.match(String(again.body.errorMessage), /already provisioned .*allowReprovisioning/);
    assert.equal(api.stats.thingsRegistered, 1);
    assert.equal(api.stats.refusedByHook, 1);
  });

  it("with allowedSerials null (any serial) the hook still refuses a known one", async () => {
    const { api, answers } = await openApi("reprovision-any-serial", {
      config: withProvisioning({ allowedSerials: null }),
    });
    assert.equal(
      (await provision(api, answers, "claim-1", "41")).topic,
      `${REGISTER_TOPIC}/accepted`,
    );
    assert.equal((await provision(api, answers, "claim-2", "41")).body.errorCode, "ACCESS_DENIED");
    assert.equal(
      (await provision(api, answers, "claim-3", "42")).topic,
      `${REGISTER_TOPIC}/accepted`,
    );
  });

  it("a restart remembers: the registry's things are known to the hook", async () => {
    const first = await openApi("reprovision-restart");
    await provision(first.api, first.answers, "claim-1", "3");
    const second = await openApi("reprovision-restart-2", { stateDir: first.dir });
    assert.equal(
      (await provision(second.api, second.answers, "claim-9", "3")).body.errorCode,
      "ACCESS_DENIED",
    );
  });

  it("allowReprovisioning: true lets it provision again: a second certificate for the same thing (OverrideSettings MERGE)", async () => {
    const { api, answers } = await openApi("reprovision-on", {
      config: withProvisioning({ allowReprovisioning: true }),
    });
    const first = await provision(api, answers, "claim-1", "2");
    const second = await provision(api, answers, "claim-2", "2");
    assert.equal(second.topic, `${REGISTER_TOPIC}/accepted`);
    assert.equal(second.body.thingName, first.body.thingName);
    assert.deepEqual(api.registry.thing("store-sensor-seattle2"), {
      name: "store-sensor-seattle2",
      typeName: "sensor",
      groups: ["Seattle"],
      attributes: { city: "Seattle", serialNumber: "2" },
    });
    assert.equal(api.stats.thingsRegistered, 2);
  });
});
