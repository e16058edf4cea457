// tools/make-csr.ts makes a device key that stays local and a CSR the stack config accepts, and
// never overwrites a key it did not make in this call.
import "reflect-metadata";
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createPrivateKey, createPublicKey, webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { loadStackConfig } from "../../core/stack-config";
import { makeCsrs } from "../../tools/make-csr";
import { runProgram } from "../../tools/mock-program";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** A throwaway project: the real Pulumi.yaml and prod stack, CSRs in a folder of its own. */
function project(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "make-csr-"));
  const root = path.resolve(__dirname, "../..");
  fs.copyFileSync(path.join(root, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
  fs.writeFileSync(
    path.join(dir, "Pulumi.prod.yaml"),
    fs
      .readFileSync(path.join(root, "Pulumi.prod.yaml"), "utf8")
      .replace("csrDir: csr/prod", "csrDir: devices-csr"),
  );
  return dir;
}

describe("make-csr", () => {
  let dir: string;
  beforeEach(() => {
    dir = project();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("makes a 0600 P-256 key per thing and a CSR for it that the stack config accepts", async () => {
    const results = await makeCsrs({ stack: "prod", dir });
    assert.deepEqual(
      results.map((r) => [r.thing, r.outcome]),
      [1, 2, 3].map((i) => [`store-sensor-seattle${i}`, "created"]),
    );
    for (const r of results) {
      assert.equal(r.keyFile, path.join(dir, ".local", "devices", "prod", `${r.thing}.key`));
      assert.equal(fs.statSync(r.keyFile).mode & 0o777, 0o600);
      const key = createPrivateKey(fs.readFileSync(r.keyFile));
      assert.equal(key.asymmetricKeyDetails?.namedCurve, "prime256v1");
      const csr = new x509.Pkcs10CertificateRequest(fs.readFileSync(r.csrFile, "utf8"));
      assert.equal(csr.subject, `CN=${r.thing}`);
      assert.ok(await csr.verify(), "the CSR is signed by its key");
      const csrKey = Buffer.from(csr.publicKey.rawData);
      const ours = createPublicKey(key).export({ type: "spki", format: "der" });
      assert.ok(csrKey.equals(ours), "the CSR carries the device key's public half");
    }
    const config = loadStackConfig("prod", dir);
    assert.equal(Object.keys(config.certificates.csrFiles).length, 3);
  });

  it("feeds a program run from that project: its relative csrDir resolves there", async () => {
    const made = await makeCsrs({ stack: "prod", dir });
    const run = await runProgram("prod", { dir });
    const csrs = run.resources
      .filter((r) => r.type === "aws:iot/certificate:Certificate")
      .map((r) => r.props.csr)
      .sort();
    assert.deepEqual(csrs, made.map((m) => fs.readFileSync(m.csrFile, "utf8")).sort());
  });

  it("keeps existing keys and CSRs, and makes a CSR for a key that lost its CSR", async () => {
    const first = await makeCsrs({ stack: "prod", dir });
    const key1 = fs.readFileSync(first[0].keyFile, "utf8");
    const csr2 = fs.readFileSync(first[1].csrFile, "utf8");
    fs.rmSync(first[0].csrFile);
    fs.rmSync(first[2].keyFile);
    const second = await makeCsrs({ stack: "prod", dir });
    assert.deepEqual(
      second.map((r) => r.outcome),
      ["csr-from-existing-key", "kept", "skipped"],
    );
    assert.equal(fs.readFileSync(first[0].keyFile, "utf8"), key1, "the key was not replaced");
    assert.equal(fs.readFileSync(first[1].csrFile, "utf8"), csr2);
    const csr = new x509.Pkcs10CertificateRequest(fs.readFileSync(first[0].csrFile, "utf8"));
    const ours = createPublicKey(createPrivateKey(key1)).export({ type: "spki", format: "der" });
    assert.ok(Buffer.from(csr.publicKey.rawData).equals(ours));
  });
});
