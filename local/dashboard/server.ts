// The local dashboard's web server: node:http on 127.0.0.1, the page's own HTML, JS and CSS (no
// CDN: it works offline), live updates as Server-Sent Events, and the local bucket's objects
// served read-only. The pipeline never waits for a page: an event a page cannot take now is
// dropped for it (it gets a fresh snapshot once it catches up), a page that stays behind is cut,
// and the number of open pages is capped.
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { EnvironmentError } from "../../core/errors";
import type { DashboardSnapshot, DashboardTick } from "./feed";

/** What the server serves: a snapshot for a page that opens, then every tick (feed.ts). */
export interface DashboardSource {
  snapshot(): DashboardSnapshot;
  onTick(listener: (tick: DashboardTick) => void): void;
}

/** The page's files, read once at start from local/dashboard/page/. */
const PAGE_DIR = path.join(__dirname, "page");
const PAGE_FILES: Readonly<Record<string, { file: string; type: string }>> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/dashboard.js": { file: "dashboard.js", type: "text/javascript; charset=utf-8" },
  "/dashboard.css": { file: "dashboard.css", type: "text/css; charset=utf-8" },
};

export interface DashboardServerOptions {
  /** Port on 127.0.0.1; 0 for any free port. @default 0 */
  readonly port?: number;
  /** The local bucket's folder, whose objects the page links to. */
  readonly bucketDir?: string;
  /** Pages open at once; one more is answered 503. @default 8 */
  readonly maxClients?: number;
  /** Bytes an SSE stream may hold unsent before its events are dropped. @default 256 KiB */
  readonly maxBufferedBytes?: number;
  /** A page that has taken nothing for this long is disconnected. @default 10 s */
  readonly stalledMs?: number;
  readonly log?: (line: string) => void;
}

interface Client {
  readonly res: http.ServerResponse;
  /** Since when events are being dropped for it; undefined while it keeps up. */
  behindSince?: number;
}

export interface DashboardServerStats {
  /** Pages that opened the event stream. */
  pages: number;
  /** Pages refused because `maxClients` were open. */
  refused: number;
  /** Events not written to a page that was behind. */
  dropped: number;
  /** Pages disconnected for staying behind. */
  cut: number;
  /** Pages that went away (a closed tab) before the run ended. */
  closed: number;
  /** Requests for a file outside the bucket, or a missing one. */
  badPaths: number;
  /** Requests naming another host (DNS rebinding). */
  badHosts: number;
}

export class DashboardServer {
  readonly stats: DashboardServerStats = {
    pages: 0,
    refused: 0,
    dropped: 0,
    cut: 0,
    closed: 0,
    badPaths: 0,
    badHosts: 0,
  };
  private readonly clients = new Set<Client>();
  private readonly page = new Map<string, Buffer>();
  private feed: DashboardSource | undefined;
  private bucketDir: string | undefined;
  private ending = false;
  private readonly log: (line: string) => void;
  private readonly maxClients: number;
  private readonly maxBuffered: number;
  private readonly stalledMs: number;

  private constructor(
    private readonly server: http.Server,
    opts: DashboardServerOptions,
  ) {
    this.log = opts.log ?? (() => undefined);
    this.maxClients = opts.maxClients ?? 8;
    this.maxBuffered = opts.maxBufferedBytes ?? 256 * 1024;
    this.stalledMs = opts.stalledMs ?? 10_000;
    this.bucketDir = opts.bucketDir;
    for (const { file } of Object.values(PAGE_FILES)) {
      this.page.set(file, fs.readFileSync(path.join(PAGE_DIR, file)));
    }
  }

  /**
   * Listens on 127.0.0.1. A port in use is an EnvironmentError naming the option to change, thrown
   * before anything else of the run starts.
   */
  static async start(opts: DashboardServerOptions = {}): Promise<DashboardServer> {
    const server = http.createServer();
    const d = new DashboardServer(server, opts);
    server.on("request", (req, res) => {
      // Whatever a request holds, it is answered and never takes the run down.
      try {
        d.handle(req, res);
      } catch {
        if (!res.headersSent) d.text(res, 400, "a request the dashboard does not understand");
        else res.destroy();
      }
    });
    // A page's socket error (a reset mid-stream) is the page's business, never the run's.
    server.on("clientError", (_e, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once("error", (e: NodeJS.ErrnoException) => {
        reject(
          e.code === "EADDRINUSE"
            ? new EnvironmentError(
                `--dashboard-port ${opts.port}: the port is in use by another program; choose another, leave it out for any free port, or add --no-dashboard`,
              )
            : e.code === "EACCES"
              ? new EnvironmentError(
                  `--dashboard-port ${opts.port}: not allowed to listen there (ports below 1024 need privileges); choose a port from 1024 to 65535`,
                )
              : e,
        );
      });
      server.listen(opts.port ?? 0, "127.0.0.1", () => resolve());
    });
    server.on("error", (e) => d.log(`dashboard: ${e.message}`));
    return d;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/`;
  }

  /** Pages open now. */
  get openPages(): number {
    return this.clients.size;
  }

  /** Starts serving a run's feed (until then the page says the pipeline is starting). */
  attach(feed: DashboardSource, bucketDir: string): void {
    this.feed = feed;
    this.bucketDir = bucketDir;
    feed.onTick((tick) => this.broadcast(tick));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.on("error", () => undefined);
    // DNS rebinding: a web site whose name was made to resolve to 127.0.0.1 would otherwise read
    // the run's figures and the bucket's objects from a browser tab on this machine.
    const host = req.headers.host;
    if (host !== `127.0.0.1:${this.port}` && host !== `localhost:${this.port}`) {
      this.stats.badHosts++;
      return this.text(res, 421, `this page answers to 127.0.0.1:${this.port} only, not ${host}`);
    }
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (req.method !== "GET" && req.method !== "HEAD") {
      return this.text(res, 405, "the dashboard is read-only: GET only", { allow: "GET, HEAD" });
    }
    const page = PAGE_FILES[url.pathname];
    if (page !== undefined) {
      const body = this.page.get(page.file) as Buffer;
      res.writeHead(200, {
        "content-type": page.type,
        "content-length": body.length,
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
      });
      res.end(req.method === "HEAD" ? undefined : body);
      return;
    }
    if (url.pathname === "/api/snapshot") {
      if (this.feed === undefined) return this.text(res, 503, "the pipeline is starting");
      const body = Buffer.from(JSON.stringify(this.feed.snapshot()));
      res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(body);
      return;
    }
    if (url.pathname === "/events") return this.openStream(req, res);
    if (url.pathname === "/favicon.ico") return void res.writeHead(204).end();
    if (url.pathname.startsWith("/bucket/")) {
      void this.serveObject(url.pathname.slice("/bucket/".length), req, res);
      return;
    }
    this.text(res, 404, `no such page: ${url.pathname}`);
  }

  text(
    res: http.ServerResponse,
    status: number,
    message: string,
    headers: http.OutgoingHttpHeaders = {},
  ): void {
    res.writeHead(status, { "content-type": "text/plain; charset=utf-8", ...headers });
    res.end(`${message}\n`);
  }

  private openStream(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.clients.size >= this.maxClients) {
      this.stats.refused++;
      // Once per burst of refusals: a page that reloads in a loop must not flood the run's output.
      if (this.stats.refused === 1 || this.stats.refused % 100 === 0) {
        this.log(
          `dashboard: ${this.maxClients} pages are open, the most it serves; refused another (${this.stats.refused} so far): close a tab`,
        );
      }
      return this.text(
        res,
        503,
        `${this.maxClients} dashboard pages are open already, the most this run serves: close another tab and reload`,
        { "retry-after": "5" },
      );
    }
    if (this.feed === undefined || this.ending) {
      return this.text(res, 503, "the pipeline is not running", { "retry-after": "2" });
    }
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
    });
    const client: Client = { res };
    this.clients.add(client);
    this.stats.pages++;
    req.socket.setNoDelay(true);
    res.on("close", () => {
      if (!this.clients.delete(client)) return;
      if (!this.ending) this.stats.closed++;
    });
    // After a drop the page's charts miss points: once its stream drains it gets a full snapshot.
    res.on("drain", () => {
      if (client.behindSince !== undefined && this.feed !== undefined) {
        client.behindSince = undefined;
        this.send(client, "snapshot", JSON.stringify(this.feed.snapshot()));
      }
    });
    this.send(client, "snapshot", JSON.stringify(this.feed.snapshot()));
  }

  /** Writes one event unless the page is behind; never waits and never buffers without bound. */
  private send(client: Client, event: string, data: string): void {
    const res = client.res;
    if (res.destroyed || res.writableEnded) return;
    if (client.behindSince !== undefined || res.writableLength > this.maxBuffered) {
      this.stats.dropped++;
      const since = (client.behindSince ??= Date.now());
      if (Date.now() - since > this.stalledMs) {
        this.stats.cut++;
        this.log(
          `dashboard: a page took nothing for ${Math.round(this.stalledMs / 1000)} s; disconnected it (the pipeline never waits for a page)`,
        );
        this.clients.delete(client);
        res.destroy();
      }
      return;
    }
    res.write(`event: ${event}\ndata: ${data}\n\n`);
  }

  private broadcast(tick: DashboardTick): void {
    if (this.clients.size === 0) return;
    const data = JSON.stringify(tick);
    for (const c of this.clients) this.send(c, "tick", data);
  }

  /**
   * Serves one object of the local bucket, read-only. The key is resolved inside the bucket's
   * folder, and so is its real path (a symbolic link cannot lead out); anything else is a 404.
   */
  private async serveObject(
    encoded: string,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<void> {
    const notFound = (why: string) => {
      this.stats.badPaths++;
      this.text(res, 404, why);
    };
    if (this.bucketDir === undefined) return notFound("no bucket yet");
    let key: string;
    try {
      key = decodeURIComponent(encoded);
    } catch {
      return notFound("not a valid object key");
    }
    const file = objectPath(this.bucketDir, key);
    if (file === undefined) return notFound(`not an object of the local bucket: ${key}`);
    try {
      const [root, real] = await Promise.all([
        fs.promises.realpath(this.bucketDir),
        fs.promises.realpath(file),
      ]);
      if (objectPath(root, path.relative(root, real)) !== real) {
        return notFound(`not an object of the local bucket: ${key}`);
      }
      const st = await fs.promises.stat(real);
      if (!st.isFile()) return notFound(`not an object of the local bucket: ${key}`);
      res.writeHead(200, {
        "content-type": contentType(real),
        "content-length": st.size,
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
        "content-disposition": `inline; filename="${path.basename(real).replace(/[^\w.-]/g, "_")}"`,
      });
      if (req.method === "HEAD") return void res.end();
      const stream = fs.createReadStream(real);
      stream.on("error", () => res.destroy());
      stream.pipe(res);
    } catch {
      notFound(`no such object in the local bucket: ${key}`);
    }
  }

  /** Tells every page the run is over (its last figures stay on screen), then stops listening. */
  async close(): Promise<void> {
    if (this.ending) return;
    this.ending = true;
    for (const c of this.clients) {
      c.behindSince = undefined;
      if (!c.res.destroyed) c.res.end(`event: end\ndata: {}\n\n`);
    }
    this.clients.clear();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      // Keep-alive sockets would hold close() open: idle ones go now, the rest once the last
      // event had a moment to leave.
      this.server.closeIdleConnections();
      setTimeout(() => this.server.closeAllConnections(), 500).unref();
    });
  }
}

/** A key's file inside the bucket folder, or undefined when the key leaves it or is not a key. */
export function objectPath(bucketDir: string, key: string): string | undefined {
  if (key === "" || key.includes("\0") || path.isAbsolute(key)) return undefined;
  const root = path.resolve(bucketDir);
  const file = path.resolve(root, key);
  const rel = path.relative(root, file);
  if (rel === "" || rel.startsWith("..") || path.isAbsolute(rel)) return undefined;
  return file;
}

function contentType(file: string): string {
  if (file.endsWith(".gz") || file.endsWith(".parquet") || file.endsWith(".snappy")) {
    return "application/octet-stream";
  }
  // Firehose's objects have no extension: JSON lines, shown as text.
  return "text/plain; charset=utf-8";
}
