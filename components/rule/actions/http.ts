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
  httpUrlsProblem,
  isLoopbackHttp,
  type HttpHeader,
} from "../../../core/topic-rules/actions/http";
import type {
  ProgramActionFactory,
  RuleAction,
  RuleActionBinding,
  RuleActionConfigOf,
  RuleBindContext,
} from "./action";

export interface HttpActionArgs {
  readonly url: string;
  /** The destination's URL, a literal prefix of `url`. @default url, when url has no template */
  readonly confirmationUrl?: string;
  /** @default none */
  readonly headers?: readonly HttpHeader[];
  /** Whether the destination of `confirmationUrl` is confirmed and enabled in the account. */
  readonly confirmed: boolean;
  /** @default "http" */
  readonly id?: string;
}

export class HttpAction implements RuleAction {
  readonly id: string;
  readonly confirmationUrl: string;

  constructor(private readonly args: HttpActionArgs) {
    this.id = args.id ?? "http";
    const problem = httpUrlsProblem(args.url, args.confirmationUrl);
    if (problem !== undefined) throw new Error(`HTTP action ${this.id}: ${problem}`);
    this.confirmationUrl = args.confirmationUrl ?? args.url;
    if (isLoopbackHttp(this.confirmationUrl)) {
      throw new Error(
        `HTTP action ${this.id}: ${this.confirmationUrl} is a local http:// endpoint, which only the local pipeline posts to; AWS IoT needs a public https:// endpoint`,
      );
    }
    if (!args.confirmed) {
      throw new Error(
        `HTTP action ${this.id}: its destination ${this.confirmationUrl} is not confirmed; create it (aws iot create-topic-rule-destination --destination-configuration 'httpUrlConfiguration={confirmationUrl=${this.confirmationUrl}}'), confirm it with the token AWS IoT POSTs there, enable it (aws iot update-topic-rule-destination --status ENABLED), then set confirmed: true on the action`,
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

export const httpFromConfig: ProgramActionFactory<"http"> = (spec, ctx) =>
  new HttpAction({ id: ctx.id, ...spec.params });
