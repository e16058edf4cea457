// The HTTP action, locally: a real POST of each message's SQL result to the action's URL (its
// templates filled in), only when the action is `confirmed` and the URL begins with its
// confirmationUrl, the destination's URL ("You must confirm and enable HTTPS endpoints before the
// rules engine can use them": https://docs.aws.amazon.com/iot/latest/developerguide/https-rule-action.html,
// http-action-destination.html); with the page's default content type and retry rules, and every
// wait and read bounded. A request that fails after its tries goes to the error action.
import * as http from "node:http";
import * as https from "node:https";
import {
  HTTP_MAX_TRIES,
  HTTP_RETRY_RESPONSE_BYTES,
  defaultContentType,
  httpStatusRetried,
  isLoopbackHttp,
  type HttpParams,
} from "../../../core/topic-rules/actions/http";
import { compileTemplate } from "../../../core/topic-rules/template";
import { ActionFailure, substitute, type ActionMessage, type LocalActionFactory } from "./action";

/**
 * This project's bound on one try (connect, send, answer): AWS documents a request timeout but not
 * its length here, so the local pipeline picks one that a healthy endpoint meets and a hung one
 * cannot stretch: three tries take at most 3 x 3 s.
 */
export const HTTP_TRY_TIMEOUT_MS = 3_000;

/** What one try came back with. */
type TryResult =
  | {
      readonly kind: "response";
      readonly status: number;
      readonly bytes: number;
      readonly closed: boolean;
    }
  | { readonly kind: "error"; readonly message: string };

export interface LocalHttpOptions {
  /** @default HTTP_TRY_TIMEOUT_MS */
  readonly tryTimeoutMs?: number;
}

/** The action's figures: requests answered 2xx, failed after their tries, retries, refusals. */
export interface LocalHttpStats {
  sent: number;
  failed: number;
  retries: number;
  refusedUnconfirmed: number;
}

/** The HTTP action's executor, for a rule of the local engine. */
export class LocalHttpAction {
  readonly kind = "http";
  readonly failedAction = "HttpAction";
  readonly resource: string;
  readonly stats: LocalHttpStats = { sent: 0, failed: 0, retries: 0, refusedUnconfirmed: 0 };
  private readonly tryTimeoutMs: number;
  private readonly url;
  private readonly headers;

  constructor(
    private readonly params: HttpParams,
    opts: LocalHttpOptions = {},
  ) {
    this.resource = params.url;
    this.tryTimeoutMs = opts.tryTimeoutMs ?? HTTP_TRY_TIMEOUT_MS;
    this.url = compileTemplate(params.url);
    this.headers = params.headers.map((h) => ({ key: h.key, value: compileTemplate(h.value) }));
  }

  async run(m: ActionMessage): Promise<void> {
    const url = substitute(this.url, m);
    const fail = (why: string) =>
      new ActionFailure(
        `HttpAction failed to make a request to the specified endpoint. ${why}`,
        url,
      );
    // "You must confirm and enable HTTPS endpoints before the rules engine can use them."
    if (!this.params.confirmed || !url.startsWith(this.params.confirmationUrl)) {
      this.stats.refusedUnconfirmed++;
      throw fail(
        this.params.confirmed
          ? `${url} does not begin with the confirmed destination ${this.params.confirmationUrl}`
          : `The topic rule destination ${this.params.confirmationUrl} is not confirmed and enabled (confirmed: false); nothing was sent`,
      );
    }
    if (!url.startsWith("https://") && !isLoopbackHttp(url)) {
      throw fail(`${url} is not an https:// URL`);
    }
    const headers: Record<string, string> = {};
    let hasContentType = false;
    for (const h of this.headers) {
      headers[h.key] = substitute(h.value, m);
      if (h.key.toLowerCase() === "content-type") hasContentType = true;
    }
    if (!hasContentType) headers["content-type"] = defaultContentType(m.record);
    let last = "";
    let tries = 0;
    for (let attempt = 1; attempt <= HTTP_MAX_TRIES; attempt++) {
      tries = attempt;
      if (attempt > 1) this.stats.retries++;
      const r = await this.post(url, headers, m.record);
      if (r.kind === "response" && r.status >= 200 && r.status <= 299) {
        this.stats.sent++;
        return;
      }
      if (r.kind === "error") {
        last = r.message;
        // A connection that failed (refused, reset, timed out) is tried again.
        continue;
      }
      last = `The endpoint answered ${r.status}`;
      const retry =
        httpStatusRetried(r.status) && r.bytes <= HTTP_RETRY_RESPONSE_BYTES && !r.closed;
      if (!retry) break;
    }
    this.stats.failed++;
    throw fail(`${last} (${tries} ${tries === 1 ? "try" : "tries"})`);
  }

  /** One POST; reads at most HTTP_RETRY_RESPONSE_BYTES + 1 of the answer, within the try's timeout. */
  private post(url: string, headers: Record<string, string>, body: Buffer): Promise<TryResult> {
    return new Promise<TryResult>((resolve) => {
      let settled = false;
      const done = (r: TryResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(r);
      };
      const client = url.startsWith("https://") ? https : http;
      const req = client.request(
        url,
        { method: "POST", headers: { ...headers, "content-length": String(body.length) } },
        (res) => {
          let bytes = 0;
          res.on("data", (chunk: Buffer) => {
            bytes += chunk.length;
            if (bytes > HTTP_RETRY_RESPONSE_BYTES) {
              // Larger than the page's 16,384 bytes: enough is known; stop reading.
              done({ kind: "response", status: res.statusCode ?? 0, bytes, closed: false });
              req.destroy();
            }
          });
          res.on("end", () =>
            done({
              kind: "response",
              status: res.statusCode ?? 0,
              bytes,
              closed: res.headers.connection === "close",
            }),
          );
          res.on("error", (e) => done({ kind: "error", message: e.message }));
        },
      );
      // No redirects are followed (node's http does not): a 3xx is an answer other than 2xx.
      const timer = setTimeout(() => {
        done({ kind: "error", message: `Request timeout to ${url} after ${this.tryTimeoutMs} ms` });
        req.destroy();
      }, this.tryTimeoutMs);
      req.on("error", (e) => done({ kind: "error", message: e.message }));
      req.end(body);
    });
  }
}

export const localHttp: LocalActionFactory<"http"> = (spec) => new LocalHttpAction(spec.params);
