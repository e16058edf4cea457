// The HTTP rule action: each message is POSTed to an HTTPS endpoint whose topic rule destination
// AWS IoT has confirmed (https://docs.aws.amazon.com/iot/latest/developerguide/https-rule-action.html:
// "You must confirm and enable HTTPS endpoints before the rules engine can use them"). No role.
// The destination: with a literal `confirmationUrl`, "AWS IoT creates a topic rule destination
// for confirmationUrl" when it creates the rule and POSTs the confirmation request there
// (https://docs.aws.amazon.com/iot/latest/developerguide/http-action-destination.html); the
// provider cannot create HTTP destinations (aws.iot.TopicRuleDestination is VPC-only), so the
// program leaves that to AWS and refuses an action whose destination the config does not list as
// confirmed.
import { ConfigError } from "../../../core/errors";
import {
  httpDestinationProblem,
  httpUrlsProblem,
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
    if (problem !== undefined) throw new ConfigError(`HTTP action ${this.id}: ${problem}`);
    this.confirmationUrl = args.confirmationUrl ?? args.url;
    // core/deploy-readiness.ts says the same before anything is built; this keeps the component
    // safe on its own.
    const destination = httpDestinationProblem({
      url: args.url,
      confirmationUrl: this.confirmationUrl,
      headers: args.headers ?? [],
      confirmed: args.confirmed,
    });
    if (destination !== undefined) throw new ConfigError(`HTTP action ${this.id}: ${destination}`);
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
