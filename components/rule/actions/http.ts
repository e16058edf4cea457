// The HTTP rule action: each message is POSTed to an HTTPS endpoint whose topic rule destination
// AWS IoT has confirmed (https://docs.aws.amazon.com/iot/latest/developerguide/https-rule-action.html:
// "You must confirm and enable HTTPS endpoints before the rules engine can use them"). No role.
// The destination: with a literal `confirmationUrl`, "AWS IoT creates a topic rule destination
// for confirmationUrl" when it creates the rule and POSTs the confirmation request there
// (https://docs.aws.amazon.com/iot/latest/developerguide/http-action-destination.html); the
// provider cannot create HTTP destinations (aws.iot.TopicRuleDestination is VPC-only), so the
// program leaves that to AWS and refuses an action whose destination the config does not list as
// confirmed.
import {
  httpActionProblem,
  isLoopbackHttp,
  type HttpHeader,
} from "../../../core/rule-actions/http";
import type { RuleAction, RuleActionBinding, RuleActionConfigOf, RuleBindContext } from "./action";

export interface HttpActionArgs {
  readonly url: string;
  /** The destination's URL, a literal prefix of `url`. @default url, when url has no template */
  readonly confirmationUrl?: string;
  /** @default none */
  readonly headers?: readonly HttpHeader[];
  /**
   * The confirmation URLs of the destinations the account has confirmed and enabled: the action's
   * must be one of them.
   */
  readonly confirmedDestinations: readonly string[];
  /** @default "http" */
  readonly id?: string;
}

export class HttpAction implements RuleAction {
  readonly id: string;
  readonly confirmationUrl: string;

  constructor(private readonly args: HttpActionArgs) {
    this.id = args.id ?? "http";
    const problem = httpActionProblem(args as unknown as Record<string, unknown>);
    if (problem !== undefined) throw new Error(`HTTP action ${this.id}: ${problem}`);
    this.confirmationUrl = args.confirmationUrl ?? args.url;
    if (isLoopbackHttp(this.confirmationUrl)) {
      throw new Error(
        `HTTP action ${this.id}: ${this.confirmationUrl} is a local http:// endpoint, which only the local pipeline posts to; AWS IoT needs a public https:// endpoint`,
      );
    }
    if (!args.confirmedDestinations.includes(this.confirmationUrl)) {
      throw new Error(
        `HTTP action ${this.id}: its destination ${this.confirmationUrl} is not confirmed; confirm it (the request AWS IoT POSTs there carries an enableUrl), enable it, then list it under the stack's confirmed HTTP destinations`,
      );
    }
  }

  bind(_rule: RuleBindContext): RuleActionBinding<RuleActionConfigOf<"http">> {
    return {
      config: {
        kind: "http",
        value: {
          url: this.args.url,
          confirmationUrl: this.confirmationUrl,
          ...(this.args.headers === undefined || this.args.headers.length === 0
            ? {}
            : { httpHeaders: this.args.headers.map((h) => ({ key: h.key, value: h.value })) }),
        },
      },
    };
  }
}
