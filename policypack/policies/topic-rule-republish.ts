// Policy 21: a topic rule's republish action (or error action) aims at a topic of the user's own,
// or at the one kind of reserved topic AWS documents a republish reaching, the device shadow's
// (`$$aws/things/<thing>/shadow/...`); republishing to job topics "is not supported"
// (https://docs.aws.amazon.com/iot/latest/developerguide/republish-rule-action.html). The rule is
// the one the config loader applies (core/topic-rules/actions/republish.ts).
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { republishTopicProblem } from "../../core/topic-rules/actions/republish";
import { TYPES, obj, str, validateType } from "./common";

export const iotTopicRuleRepublishTopic: ResourceValidationPolicy = {
  name: "iot-topic-rule-republish-topic",
  description:
    "A topic rule's republish actions (and republish error action) name one topic, not a filter, and a reserved $aws topic only where AWS documents it: the device shadow's, written $$aws/things/<thing>/shadow/....",
  enforcementLevel: "mandatory",
  severity: "medium",
  validateResource: validateType(TYPES.iotTopicRule, (props, args, report) => {
    const name = str(props.name) ?? args.name;
    const republishes = Array.isArray(props.republishes) ? (props.republishes as unknown[]) : [];
    const error = obj(obj(props.errorAction)?.republish);
    const targets = [
      ...republishes.map((r, i) => ({ where: `republishes[${i}]`, topic: str(obj(r)?.topic) })),
      ...(error === undefined ? [] : [{ where: "errorAction.republish", topic: str(error.topic) }]),
    ];
    for (const t of targets) {
      // Unknown during preview when the topic is another resource's output.
      if (t.topic === undefined) continue;
      const problem = republishTopicProblem(t.topic);
      if (problem !== undefined) {
        report(`topic rule ${name} ${t.where}.topic ${JSON.stringify(t.topic)}: ${problem}`);
      }
    }
  }),
};
