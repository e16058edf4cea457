// Policy 22: a topic rule's HTTP action (or error action) POSTs only to a destination that is
// confirmed: "You must confirm and enable HTTPS endpoints before the rules engine can use them"
// (https://docs.aws.amazon.com/iot/latest/developerguide/https-rule-action.html). The destination
// is the action's literal confirmationUrl ("confirmationUrl must be a prefix of url"), an https://
// URL, and one the pack's config lists as confirmed (`confirmedDestinations`): the provider
// cannot read a destination's state, so whoever owns the guardrails says which endpoints the
// account's data may reach.
import type { PolicyConfigSchema, ResourceValidationPolicy } from "@pulumi/policy";
import { parseTemplate, TemplateError } from "../../core/topic-rules/template";
import { TYPES, items, obj, str, validateType } from "./common";

export const confirmedDestinationsSchema: PolicyConfigSchema = {
  properties: {
    confirmedDestinations: {
      type: "array",
      items: { type: "string" },
      default: [],
      description:
        "The confirmation URLs of the topic rule destinations confirmed and enabled in the account (http-action-destination.html).",
    },
  },
};

/** Whether text holds a `${...}` substitution template (or cannot be read as one). */
function templated(text: string): boolean {
  try {
    return parseTemplate(text).dynamic;
  } catch (e) {
    if (!(e instanceof TemplateError)) throw e;
    return true;
  }
}

export const iotTopicRuleHttpConfirmedDestination: ResourceValidationPolicy = {
  name: "iot-topic-rule-http-confirmed-destination",
  description:
    "Topic rule HTTP actions (and HTTP error actions) name a literal https:// confirmationUrl that their url begins with, and that confirmationUrl is one of the pack config's confirmedDestinations.",
  enforcementLevel: "mandatory",
  severity: "high",
  configSchema: confirmedDestinationsSchema,
  validateResource: validateType(TYPES.iotTopicRule, (props, args, report) => {
    const name = str(props.name) ?? args.name;
    const confirmed =
      args.getConfig<{ confirmedDestinations?: string[] }>().confirmedDestinations ?? [];
    const actions = [
      ...items(props.https).map((h) => ({ where: "https", h })),
      ...items(obj(props.errorAction)?.http).map((h) => ({ where: "errorAction.http", h })),
    ];
    for (const { where, h } of actions) {
      const url = str(h.url);
      const confirmation = str(h.confirmationUrl);
      // Unknown during preview: the engine reports it and runs the policy at `pulumi up`.
      if (url === undefined) continue;
      if (confirmation === undefined || templated(confirmation)) {
        report(
          `topic rule ${name}'s ${where} action to ${url} has no literal confirmationUrl, so no confirmed destination it goes to; set confirmationUrl to the literal prefix of url whose destination you confirmed`,
        );
        continue;
      }
      if (!url.startsWith(confirmation)) {
        report(
          `topic rule ${name}'s ${where} url ${url} does not begin with its confirmationUrl ${confirmation}; make confirmationUrl a prefix of url`,
        );
      }
      if (!confirmation.startsWith("https://")) {
        report(
          `topic rule ${name}'s ${where} confirmationUrl ${confirmation} is not an https:// URL; AWS IoT sends only to HTTPS endpoints`,
        );
      }
      if (!confirmed.includes(confirmation)) {
        report(
          `topic rule ${name}'s ${where} action sends to ${confirmation}, which the pack does not list as confirmed; confirm and enable the destination, then add it to this policy's confirmedDestinations`,
        );
      }
    }
  }),
};
