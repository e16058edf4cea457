// The HTTP rule action (https://docs.aws.amazon.com/iot/latest/developerguide/https-rule-action.html)
// and its destination (https://docs.aws.amazon.com/iot/latest/developerguide/http-action-destination.html).
// "You must confirm and enable HTTPS endpoints before the rules engine can use them"; `url` "The
// HTTPS endpoint where the message is sent using the HTTP POST method"; "`confirmationUrl` must be
// a prefix of `url`"; "If `url` contains a substitution template, you must specify
// `confirmationUrl`"; headers: "The default content type is application/json when the payload is
// in JSON format. Otherwise, it is application/octet-stream".
import { parseTemplate } from "../template";
import { checkTemplate, ParamReader, type ActionDefinition } from "./action";

const hasTemplate = (text: string) => parseTemplate(text).dynamic;

export const HTTP_ACTION_PAGE =
  "https://docs.aws.amazon.com/iot/latest/developerguide/https-rule-action.html";
export const HTTP_DESTINATION_PAGE =
  "https://docs.aws.amazon.com/iot/latest/developerguide/http-action-destination.html";

export interface HttpHeader {
  readonly key: string;
  /** May hold substitution templates ("value ... Supports substitution templates: Yes"). */
  readonly value: string;
}

export interface HttpParams {
  /** Where each message is POSTed; may hold substitution templates. */
  readonly url: string;
  /**
   * The topic rule destination's URL: a literal prefix of `url`. Defaults to `url` when `url`
   * has no template (the page: "we implicitly treat the url field as the confirmationUrl").
   */
  readonly confirmationUrl: string;
  readonly headers: readonly HttpHeader[];
  /**
   * Whether the destination of `confirmationUrl` is confirmed and enabled in the account. The
   * program creates the rule only then, and the local pipeline POSTs only then. @default false
   */
  readonly confirmed: boolean;
}

export interface HttpSpec {
  readonly kind: "http";
  readonly params: HttpParams;
}

/**
 * A URL the local pipeline may POST to over plain HTTP: a loopback address, for a test server
 * on the developer's machine. `pulumi up` refuses it (AWS sends only to public HTTPS endpoints).
 */
export function isLoopbackHttp(url: string): boolean {
  return /^http:\/\/(127\.0\.0\.1|localhost)(:\d+)?(\/|$)/.test(url);
}

/** Whether a URL is one AWS IoT would send to: https, and an IPv4 address when an address. */
function urlProblem(what: string, url: string): string | undefined {
  if (!url.startsWith("https://") && !isLoopbackHttp(url)) {
    return `${what} ${JSON.stringify(url)} is not an https:// URL (AWS IoT POSTs only to HTTPS endpoints; http:// is accepted only for 127.0.0.1 or localhost, locally)`;
  }
  if (/^https?:\/\/\[/.test(url))
    return `${what} ${JSON.stringify(url)} is an IPv6 address; AWS IoT supports IPv4 addresses only`;
  return undefined;
}

/** Why an HTTP action's url and confirmationUrl cannot be used together, or undefined. */
export function httpUrlsProblem(
  url: string,
  confirmationUrl: string | undefined,
): string | undefined {
  const confirmation = confirmationUrl ?? (hasTemplate(url) ? undefined : url);
  if (confirmation === undefined) {
    return `url ${JSON.stringify(url)} holds a substitution template, so confirmationUrl is required: the literal prefix of url that AWS IoT confirms as the topic rule destination`;
  }
  if (hasTemplate(confirmation)) {
    return `confirmationUrl ${JSON.stringify(confirmation)} holds a substitution template: AWS IoT creates and confirms a destination only for a literal URL; give the literal prefix of url`;
  }
  if (!url.startsWith(confirmation)) {
    return `url ${JSON.stringify(url)} does not begin with confirmationUrl ${JSON.stringify(confirmation)} (AWS: "confirmationUrl must be a prefix of url")`;
  }
  return urlProblem("confirmationUrl", confirmation) ?? urlProblem("url", url);
}

/**
 * Why AWS IoT would not send an action's messages, or undefined: its destination is not confirmed
 * and enabled ("You must confirm and enable HTTPS endpoints before the rules engine can use
 * them"), or it is a local http:// test endpoint, which only the local pipeline posts to.
 */
export function httpDestinationProblem(params: HttpParams): string | undefined {
  const c = params.confirmationUrl;
  if (isLoopbackHttp(c)) {
    return `the HTTP action's ${c} is a local http:// endpoint, which only the local pipeline posts to; AWS IoT needs a public https:// endpoint`;
  }
  if (!params.confirmed) {
    return `the HTTP action's destination ${c} is not confirmed; create it (aws iot create-topic-rule-destination --destination-configuration 'httpUrlConfiguration={confirmationUrl=${c}}'), confirm it with the token AWS IoT POSTs there, enable it (aws iot update-topic-rule-destination --status ENABLED), then set confirmed: true on the action`;
  }
  return undefined;
}

export const httpDefinition: ActionDefinition<"http", HttpParams> = {
  kind: "http",
  failedAction: "HttpAction",
  page: HTTP_ACTION_PAGE,
  parse(raw, ctx) {
    const p = new ParamReader(raw, ctx, ["url", "confirmationUrl", "headers", "confirmed"]);
    const url = p.template("url", 2000);
    const given = p.optionalString("confirmationUrl");
    const problem = httpUrlsProblem(url, given);
    if (problem !== undefined)
      p.fail(given === undefined ? "url" : "confirmationUrl", given ?? url, problem);
    const rawHeaders: unknown = p.raw.headers ?? [];
    if (!Array.isArray(rawHeaders))
      return p.fail("headers", rawHeaders, "set a list of {key, value}");
    const headers = (rawHeaders as unknown[]).map((h: unknown, i: number): HttpHeader => {
      const at = `${ctx.at}.headers[${i}]`;
      if (typeof h !== "object" || h === null) p.fail(`headers[${i}]`, h, "set {key, value}");
      const r = new ParamReader(h as Record<string, unknown>, { ...ctx, at }, ["key", "value"]);
      // "key ... Supports substitution templates: No"; "value ... Supports substitution templates: Yes".
      const key = r.string(
        "key",
        /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/,
        "set a header name (letters, digits and !#$%&'*+.^_`|~-; not a template)",
      );
      return { key, value: r.template("value", 4096) };
    });
    const confirmed: unknown = p.raw.confirmed ?? false;
    if (typeof confirmed !== "boolean")
      return p.fail(
        "confirmed",
        confirmed,
        "set true once the destination is confirmed and enabled, else false",
      );
    checkTemplate(url, (why) => p.fail("url", url, why));
    return { url, confirmationUrl: given ?? url, headers, confirmed };
  },
};

/** Whether `url` (templates substituted) may be sent to: it begins with a confirmed destination. */
export function confirmedDestinationOf(
  url: string,
  confirmed: readonly string[],
): string | undefined {
  return confirmed.find((c) => url.startsWith(c));
}

/** The page's default content type: JSON payloads application/json, others application/octet-stream. */
export function defaultContentType(body: Buffer): string {
  try {
    JSON.parse(body.toString("utf8"));
    return "application/json";
  } catch {
    return "application/octet-stream";
  }
}

/**
 * The retry rules of "HTTP action retry logic": "at least once", "at most twice. The maximum
 * number of tries is three", and no retry when "the previous try provided a response larger than
 * 16384 bytes", when the web service "closes the TCP connection after the try", when the total
 * time passed the request timeout, or when "the request returns an HTTP status code other than
 * 429, 500-599".
 */
export const HTTP_MAX_TRIES = 3;
export const HTTP_RETRY_RESPONSE_BYTES = 16_384;
export function httpStatusRetried(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599);
}
