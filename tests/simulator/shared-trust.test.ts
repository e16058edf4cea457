// The fleet's one CA trusted once for the process: over real TLS, a client without `ca` verifies the
// broker against exactly that CA while the fleet runs (a server of another CA is refused), and the
// process's previous trust is back afterwards.
import { strict as assert } from "node:assert";
import * as tls from "node:tls";
import type { AddressInfo } from "node:net";
import type { Pki } from "../../local/identity/ca";
import { trustOnce } from "../../simulator/shared-trust";
import { testPki } from "../helpers/broker";

/** A TLS server with the PKI's server certificate; resolves its port. */
async function serve(pki: Pki): Promise<{ port: number; close(): void }> {
  const server = tls.createServer({ key: pki.server.key, cert: pki.server.cert }, (s) => s.end());
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return { port: (server.address() as AddressInfo).port, close: () => server.close() };
}

/** Connects without `ca`: the process's default trust decides. Resolves how it went. */
function verify(port: number): Promise<"verified" | string> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername: "localhost" }, () => {
      socket.destroy();
      resolve("verified");
    });
    socket.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

describe("the fleet's CA trusted once for the process", function () {
  this.timeout(30_000);
  let ours: Pki;
  let theirs: Pki;
  before(async () => {
    [ours, theirs] = await Promise.all([testPki(), testPki()]);
  });

  it("changes nothing when devices have no CA (AWS: Node's roots) or different ones", () => {
    const before = tls.getCACertificates("default");
    assert.equal(trustOnce([]), undefined);
    assert.equal(trustOnce([undefined, undefined]), undefined);
    assert.equal(trustOnce([ours.caPem, undefined]), undefined);
    assert.equal(trustOnce([ours.caPem, theirs.caPem]), undefined);
    assert.deepEqual(tls.getCACertificates("default"), before);
  });

  it("verifies against exactly that CA while set, and puts the previous trust back", async () => {
    const a = await serve(ours);
    const b = await serve(theirs);
    try {
      assert.notEqual(await verify(a.port), "verified", "the local CA is not trusted by default");
      const restore = trustOnce([ours.caPem, ours.caPem, ours.caPem]);
      assert.ok(restore, "one CA for every device: trusted once");
      try {
        assert.equal(await verify(a.port), "verified");
        assert.notEqual(await verify(b.port), "verified", "another CA's server is refused");
      } finally {
        restore();
      }
      assert.notEqual(await verify(a.port), "verified", "the previous trust is back");
    } finally {
      a.close();
      b.close();
    }
  });
});
