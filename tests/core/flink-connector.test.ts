// The connector jar is used only with its pinned SHA-512 (core/flink-connector.ts): a loopback
// HTTP server and a file: URL stand in for Maven Central.
import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { DigestMismatchError, verifiedConnectorJar } from "../../core/flink-connector";
import { UserError } from "../../core/errors";

const JAR = Buffer.from("PK\u0003\u0004 a fake connector jar for the tests\n");
const sha512 = (b: Buffer | string) => createHash("sha512").update(b).digest("hex");

describe("the Flink connector jar, verified and cached", () => {
  let server: http.Server;
  let base: string;
  let body: Buffer;
  let requests: number;
  let cacheDir: string;
  const logs: string[] = [];
  const log = (l: string) => logs.push(l);

  before(async () => {
    server = http.createServer((req, res) => {
      requests++;
      if (req.url === "/maven2/x/stalls.jar") {
        // Headers and a first byte, then nothing: the bound on the download's time must end it.
        res.writeHead(200).write("P");
        return;
      }
      if (req.url !== "/maven2/x/flink-sql-connector-kinesis-5.0.0-1.20.jar") {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/java-archive" }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/maven2/x/`;
  });
  after(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  });
  beforeEach(() => {
    body = JAR;
    requests = 0;
    logs.length = 0;
    cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "connector-cache-"));
  });

  const url = () => `${base}flink-sql-connector-kinesis-5.0.0-1.20.jar`;

  it("a download with the pinned digest is kept in the cache and used", async () => {
    const file = await verifiedConnectorJar({ url: url(), sha512: sha512(JAR), cacheDir, log });
    assert.equal(
      file,
      path.join(cacheDir, sha512(JAR), "flink-sql-connector-kinesis-5.0.0-1.20.jar"),
    );
    assert.deepEqual(fs.readFileSync(file), JAR);
    assert.equal(requests, 1);
  });

  it("the cached jar is reused: no second download", async () => {
    const opts = { url: url(), sha512: sha512(JAR), cacheDir, log };
    const first = await verifiedConnectorJar(opts);
    const second = await verifiedConnectorJar(opts);
    assert.equal(second, first);
    assert.equal(requests, 1);
  });

  it("a download with another digest is refused, named with both digests, and not cached", async () => {
    body = Buffer.from("a tampered jar");
    const expected = sha512(JAR);
    await assert.rejects(
      verifiedConnectorJar({ url: url(), sha512: expected, cacheDir, log }),
      (e: unknown) =>
        e instanceof DigestMismatchError &&
        e instanceof UserError &&
        !e.message.includes("\n") &&
        e.message.includes(`has SHA-512 ${sha512(body)}, not the pinned ${expected}`) &&
        e.message.includes(`${url()}.sha512`),
    );
    const dir = path.join(cacheDir, expected);
    assert.deepEqual(
      fs.existsSync(dir) ? fs.readdirSync(dir) : [],
      [],
      "nothing left in the cache",
    );
  });

  it("a corrupt cached copy is downloaded again", async () => {
    const opts = { url: url(), sha512: sha512(JAR), cacheDir, log };
    const file = await verifiedConnectorJar(opts);
    fs.writeFileSync(file, "bit rot");
    assert.equal(await verifiedConnectorJar(opts), file);
    assert.deepEqual(fs.readFileSync(file), JAR);
    assert.equal(requests, 2);
  });

  it("without a pinned digest the jar is used and its digest logged with the command to pin it", async () => {
    await verifiedConnectorJar({ url: url(), cacheDir, log });
    const note = logs.find((l) => l.includes("is not pinned"));
    assert.ok(note, logs.join("\n"));
    assert.ok(note.includes(sha512(JAR)));
    assert.ok(
      note.includes(
        `pulumi config set iot-pipeline:flinkConnectorSha512 "$(curl -fsS ${url()}.sha512)"`,
      ),
    );
  });

  it("a file: URL is verified where it is, match and mismatch", async () => {
    const file = path.join(cacheDir, "local.jar");
    fs.writeFileSync(file, JAR);
    const href = pathToFileURL(file).href;
    assert.equal(
      await verifiedConnectorJar({ url: href, sha512: sha512(JAR), cacheDir, log }),
      file,
    );
    await assert.rejects(
      verifiedConnectorJar({ url: href, sha512: "0".repeat(128), cacheDir, log }),
      DigestMismatchError,
    );
    assert.equal(requests, 0);
  });

  it("a download that stalls is given up after timeoutMs, in one line, leaving nothing behind", async () => {
    const started = Date.now();
    await assert.rejects(
      verifiedConnectorJar({
        url: `${base}stalls.jar`,
        sha512: sha512(JAR),
        cacheDir,
        log,
        timeoutMs: 300,
      }),
      /^UserError: cannot download the Flink connector jar from \S+stalls\.jar: .*; run again, or set iot-pipeline:flinkConnectorUrl to a mirror$/,
    );
    assert.ok(Date.now() - started < 5000, "bounded by timeoutMs");
    assert.deepEqual(
      fs.readdirSync(path.join(cacheDir, sha512(JAR))),
      [],
      "no temporary file left",
    );
  });

  it("an HTTP error, a jar over the size bound and a missing file are one-line user errors", async () => {
    await assert.rejects(
      verifiedConnectorJar({ url: `${base}nothing.jar`, sha512: sha512(JAR), cacheDir, log }),
      /^UserError: cannot download the Flink connector jar from .*nothing\.jar: HTTP 404/,
    );
    await assert.rejects(
      verifiedConnectorJar({ url: url(), sha512: sha512(JAR), cacheDir, log, maxBytes: 8 }),
      /is larger than 8 bytes/,
    );
    await assert.rejects(
      verifiedConnectorJar({
        url: pathToFileURL(path.join(cacheDir, "none.jar")).href,
        cacheDir,
        log,
      }),
      /none\.jar \(config iot-pipeline:flinkConnectorUrl\) does not exist/,
    );
  });
});
