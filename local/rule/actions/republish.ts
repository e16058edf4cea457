// The republish action offline: the rule's output published as AWS IoT itself, to every
// subscriber whose policy lets it receive (LocalBroker.publishAsService), and fed to the rules
// like any message (https://docs.aws.amazon.com/iot/latest/developerguide/republish-rule-action.html).
// The topic and the MQTT 5 headers are substitution templates, filled in per message.
import { compileTemplate, type CompiledTemplate } from "../../../core/topic-rules/template";
import {
  ActionFailure,
  required,
  substitute,
  type ActionMessage,
  type LocalActionFactory,
} from "./action";

/**
 * How many republishes one device message may lead to in a chain (a rule republishing into a
 * topic that matches itself would otherwise run forever). AWS documents no such bound; past it
 * the action fails, the error action is told, and the chain stops.
 */
export const REPUBLISH_MAX_HOPS = 8;

/** AWS IoT's topic bound: 256 bytes (https://docs.aws.amazon.com/general/latest/gr/iot-core.html). */
const TOPIC_MAX_BYTES = 256;

/** Why a filled-in topic cannot be published to; undefined when it can. */
export function publishTopicProblem(topic: string): string | undefined {
  if (topic === "") return "the topic is empty";
  if (/[+#\0]/.test(topic)) return "the topic holds +, # or a null character";
  if (Buffer.byteLength(topic) > TOPIC_MAX_BYTES)
    return `the topic is over ${TOPIC_MAX_BYTES} bytes`;
  return undefined;
}

export const localRepublish: LocalActionFactory<"republish"> = (spec, services, ctx) => {
  const publish = required(services.publish, "the broker", ctx);
  const p = spec.params;
  const topic = compileTemplate(p.topic);
  const h = p.headers;
  const t = (text: string | undefined) => (text === undefined ? undefined : compileTemplate(text));
  const headers = {
    contentType: t(h?.contentType),
    responseTopic: t(h?.responseTopic),
    correlationData: t(h?.correlationData),
    messageExpiry: t(h?.messageExpiry),
    userProperties: h?.userProperties?.map((u) => ({
      key: compileTemplate(u.key),
      value: compileTemplate(u.value),
    })),
  };
  const fill = (template: CompiledTemplate | undefined, m: ActionMessage) =>
    template === undefined ? undefined : substitute(template, m);
  return {
    kind: "republish",
    failedAction: "RepublishAction",
    resource: p.topic,
    async run(m) {
      const filled = substitute(topic, m);
      // `$$` in the configured topic stands for a reserved topic's `$`.
      const target = filled.startsWith("$$") ? filled.slice(1) : filled;
      const fail = (why: string): never => {
        throw new ActionFailure(`Failed to republish to topic ${target}: ${why}`, target);
      };
      const problem = publishTopicProblem(target);
      if (problem !== undefined) fail(problem);
      if (m.hops >= REPUBLISH_MAX_HOPS) {
        services.log(
          `rule ${ctx.ruleName}: republish to ${target} stopped: the message has been republished ${m.hops} times (local bound ${REPUBLISH_MAX_HOPS}: a rule republishing into its own topic?)`,
        );
        fail(
          `the message has been republished ${m.hops} times in a chain (the local pipeline's bound is ${REPUBLISH_MAX_HOPS})`,
        );
      }
      const properties: Record<string, unknown> = {};
      if (h?.payloadFormatIndicator !== undefined) {
        properties.payloadFormatIndicator = h.payloadFormatIndicator === "UTF8_DATA";
      }
      const contentType = fill(headers.contentType, m);
      if (contentType !== undefined) properties.contentType = contentType;
      const responseTopic = fill(headers.responseTopic, m);
      if (responseTopic !== undefined) {
        const bad = publishTopicProblem(responseTopic);
        if (bad !== undefined) fail(`responseTopic: ${bad}`);
        properties.responseTopic = responseTopic;
      }
      const correlation = fill(headers.correlationData, m);
      if (correlation !== undefined) {
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(correlation) || correlation.length % 4 !== 0) {
          fail(`correlationData ${JSON.stringify(correlation)} is not base64`);
        }
        properties.correlationData = Buffer.from(correlation, "base64");
      }
      const expiry = fill(headers.messageExpiry, m);
      if (expiry !== undefined) {
        const seconds = Number(expiry);
        if (!/^\d+$/.test(expiry) || seconds > 0xffffffff) {
          fail(`messageExpiry ${JSON.stringify(expiry)} is not a whole number of seconds`);
        }
        properties.messageExpiryInterval = seconds;
      }
      if (headers.userProperties !== undefined) {
        const user: Record<string, string[]> = {};
        for (const u of headers.userProperties) {
          (user[substitute(u.key, m)] ??= []).push(substitute(u.value, m));
        }
        properties.userProperties = user;
      }
      try {
        await publish({
          topic: target,
          payload: m.record,
          qos: p.qos,
          ...(Object.keys(properties).length === 0 ? {} : { properties }),
          hops: m.hops + 1,
        });
      } catch (e) {
        if (e instanceof ActionFailure) throw e;
        fail((e as Error).message);
      }
    },
  };
};
