// The HTTP rule action (https://docs.aws.amazon.com/iot/latest/developerguide/https-rule-action.html)
// and its destination (https://docs.aws.amazon.com/iot/latest/developerguide/http-action-destination.html).
// "You must confirm and enable HTTPS endpoints before the rules engine can use them"; `url` "The
// HTTPS endpoint where the message is sent using the HTTP POST method"; "`confirmationUrl` must be
// a prefix of `url`"; "If `url` contains a substitution template, you must specify
// `confirmationUrl`"; headers: "The default content type is application/json when the payload is
// in JSON format. Otherwise, it is application/octet-stream".
import { hasTemplate } from "./template-text";

export const HTTP_ACTION_PAGE =
  "https://docs.aws.amazon.com/iot/latest/developerguide/https-rule-action.html";
export const HTTP_DESTINATION_PAGE =
  "https://docs.aws.amazon.com/iot/latest/developerguide/http-action-destination.html";

export interface HttpHeader {
  readonly key: string;
  /** May hold substitution templates ("value ... Supports substitution templates: Yes"). */
  readonly value: string;
}

/** An HTTP action as the stack config gives it. */
export interface HttpActionSpec {
  readonly kind: "http";
  /** Where each message is POSTed; may hold substitution templates. */
  readonly url: string;
  /**
   * The topic rule destination's URL: a prefix of `url`, without templates, so that AWS IoT
   * creates the destination from it when the rule is created. Defaults to `url` when `url` has
   * no template (the page: "we implicitly treat the url field as the confirmationUrl").
   */
  readonly confirmationUrl: string;
  readonly headers: readonly HttpHeader[];
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

/** Why an HTTP action's config cannot be used, or undefined. */
export function httpActionProblem(raw: Record<string, unknown>): string | undefined {
  const url = raw.url;
  if (typeof url !== "string" || url === "")
    return "url is required: the https:// endpoint each message is POSTed to";
  const confirmation = raw.confirmationUrl ?? (hasTemplate(url) ? undefined : url);
  if (typeof confirmation !== "string") {
    return `url ${JSON.stringify(url)} holds a substitution template, so confirmationUrl is required: the literal prefix of url that AWS IoT confirms as the topic rule destination`;
  }
  if (hasTemplate(confirmation)) {
    return `confirmationUrl ${JSON.stringify(confirmation)} holds a substitution template: AWS IoT creates and confirms a destination only for a literal URL; give the literal prefix of url`;
  }
  if (!url.startsWith(confirmation)) {
    return `url ${JSON.stringify(url)} does not begin with confirmationUrl ${JSON.stringify(confirmation)} (AWS: "confirmationUrl must be a prefix of url")`;
  }
  const problem = urlProblem("confirmationUrl", confirmation) ?? urlProblem("url", url);
  if (problem !== undefined) return problem;
  const headers = raw.headers ?? [];
  if (!Array.isArray(headers)) return "headers must be a list of { key, value }";
  for (const h of headers as Array<{ key?: unknown; value?: unknown }>) {
    if (typeof h?.key !== "string" || h.key === "" || typeof h.value !== "string") {
      return `header ${JSON.stringify(h)} needs a key and a string value`;
    }
    if (hasTemplate(h.key))
      return `header key ${JSON.stringify(h.key)} holds a template; only values support substitution templates`;
  }
  return undefined;
}

/** The confirmation URL an action's config implies (its own, else its template-free url). */
export function confirmationUrlOf(raw: { url: string; confirmationUrl?: string }): string {
  return raw.confirmationUrl ?? raw.url;
}

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
