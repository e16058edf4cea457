// The local CA: what it issues, and that it reissues only what is missing, expiring or foreign.
import * as assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  createCertificateAuthority,
  ensurePki,
  issueCertificate,
  readCredentials,
} from "../../local/identity/ca";
import { tempDir } from "../helpers/temp";

describe("local CA", function () {
  this.timeout(20_000);

  it("issues a CA, a localhost server certificate and one client certificate per identity", async () => {
    const dir = path.join(tempDir("ca"), "pki");
    const pki = await ensurePki(dir, ["thing-1", "console"]);
    assert.equal(pki.issued, 4); // CA, server, two identities
    const ca = new crypto.X509Certificate(pki.caPem);
    assert.equal(ca.ca, true);
    const server = new crypto.X509Certificate(pki.server.cert);
    assert.ok(server.checkIssued(ca) && server.verify(ca.publicKey));
    assert.equal(server.checkHost("localhost"), "localhost");
    assert.equal(server.checkIP("127.0.0.1"), "127.0.0.1");
    const c = readCredentials(dir, "thing-1");
    const cert = new crypto.X509Certificate(c.cert);
    assert.equal(cert.subject, "CN=thing-1");
    assert.ok(cert.checkPrivateKey(crypto.createPrivateKey(c.key)));
    assert.equal(crypto.createPrivateKey(c.key).asymmetricKeyDetails?.namedCurve, "prime256v1");
    for (const f of ["ca.key", "server.key", "identities/thing-1.key", "identities/console.key"]) {
      assert.equal(fs.statSync(path.join(dir, f)).mode & 0o777, 0o600, `${f} must be mode 0600`);
    }
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  });

  it("reuses what is valid and reissues only what is missing, expiring or from another CA", async () => {
    const dir = path.join(tempDir("ca"), "pki");
    await ensurePki(dir, ["a", "b", "c"]);
    const before = fs.readFileSync(path.join(dir, "identities", "a.crt"), "utf8");
    assert.equal((await ensurePki(dir, ["a", "b", "c"])).issued, 0);
    assert.equal(fs.readFileSync(path.join(dir, "identities", "a.crt"), "utf8"), before);

    fs.rmSync(path.join(dir, "identities", "b.crt"));
    const foreign = await issueCertificate(await createCertificateAuthority("other"), "c");
    fs.writeFileSync(path.join(dir, "identities", "c.crt"), foreign.cert);
    fs.writeFileSync(path.join(dir, "identities", "c.key"), foreign.key);
    assert.equal((await ensurePki(dir, ["a", "b", "c"])).issued, 2);

    // Ten days from expiry is inside the 30-day renewal window.
    const inTenMonths = new Date(Date.now() + 355 * 86400_000);
    assert.equal((await ensurePki(dir, ["a"], inTenMonths)).issued, 2, "server and a reissued");
  });

  it("refuses an identity that is not a thing name", async () => {
    await assert.rejects(
      ensurePki(path.join(tempDir("ca"), "pki"), ["../escape"]),
      /is not a thing name/,
    );
    assert.throws(
      () => readCredentials(tempDir("ca"), "missing"),
      /no local certificate for "missing" .*npm run simulate/,
    );
  });
});
