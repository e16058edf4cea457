// AWS IoT Core's message broker and protocol limits, as the AWS General Reference states them, the
// registry's name rules, and the one check of a topic against them: shared by the device side, the
// command line, the stack config and the local broker so that all of them refuse the same things.
//
// Source: https://docs.aws.amazon.com/general/latest/gr/iot-core.html (sections "Message broker
// and protocol limits and quotas"); the topic's UTF-8 rules come from MQTT 3.1.1 section 1.5.3.
import { isUtf8 } from "node:buffer";

/**
 * "The payload for every publish request is limited to 128 KB. The AWS IoT service rejects
 * publish and connect requests larger than this size." KB is read as 1,024 bytes, as the device
 * side always has.
 */
export const IOT_MAX_PAYLOAD_BYTES = 128 * 1024;

/** A CONNECT larger than the message size limit is rejected too (same quota line). */
export const IOT_MAX_CONNECT_BYTES = 128 * 1024;

/** "The topic passed to AWS IoT when sending a publish request is limited to 256 bytes of UTF-8." */
export const IOT_MAX_TOPIC_BYTES = 256;

/** "A topic in a publish or subscribe request is limited to 7 forward slashes (/)." */
export const IOT_MAX_TOPIC_SLASHES = 7;

/** "Client ID size: 128 bytes of UTF-8 encoded characters." */
export const IOT_MAX_CLIENT_ID_BYTES = 128;

/**
 * Thing and thing-group names: 1-128 of letters, digits, `:`, `_`, `-` (CreateThing's thingName,
 * https://docs.aws.amazon.com/iot/latest/apireference/API_CreateThing.html).
 */
export const IOT_THING_NAME = /^[a-zA-Z0-9:_-]{1,128}$/;

/**
 * A certificate attribute holds at most five values; AWS ignores the rest
 * (https://docs.aws.amazon.com/iot/latest/developerguide/cert-policy-variables.html).
 */
export const IOT_MAX_CERT_VALUES = 5;

/** "A single SUBSCRIBE request is limited to a maximum of eight subscriptions." */
export const IOT_MAX_SUBSCRIPTIONS_PER_SUBSCRIBE = 8;

/**
 * "AWS IoT limits each client connection to a maximum number of inbound and outbound publish
 * requests per second. Publish requests exceeding that limit will be discarded." (100)
 */
export const IOT_PUBLISHES_PER_SECOND_PER_CONNECTION = 100;

/** Topic rule names: 1-128 of letters, digits and `_` (CreateTopicRule's ruleName). */
export const IOT_MAX_RULE_NAME_BYTES = 128;
const RULE_NAME_CHARS = "[a-zA-Z0-9_]";

/**
 * IoT policy names: 1-128 of letters, digits and `+ = , . @ _ -` (CreatePolicy's policyName,
 * https://docs.aws.amazon.com/iot/latest/apireference/API_CreatePolicy.html).
 */
export const IOT_POLICY_NAME = /^[\w+=,.@-]{1,128}$/;

/**
 * Basic Ingest topics, `$aws/rules/<rule>/...`: "The first three levels of the Basic Ingest topic
 * ($aws/rules/rule_name) don't count towards the 8 segment length or 256 total character limit for
 * a topic" (https://docs.aws.amazon.com/iot/latest/developerguide/iot-basic-ingest.html; the
 * quotas page likewise excludes "the first three mandatory segments ($aws/rules/rule-name/)").
 */
export const BASIC_INGEST_PREFIX = "$aws/rules/";
const BASIC_INGEST = new RegExp(`^\\$aws/rules/${RULE_NAME_CHARS}{1,${IOT_MAX_RULE_NAME_BYTES}}/`);

/**
 * The longest topic a PUBLISH may carry on the wire: 256 bytes, plus a Basic Ingest prefix
 * (`$aws/rules/`, a rule name, `/`) that is not counted.
 */
export const IOT_MAX_TOPIC_WIRE_BYTES =
  IOT_MAX_TOPIC_BYTES + BASIC_INGEST_PREFIX.length + IOT_MAX_RULE_NAME_BYTES + 1;

/** Whether a topic (or filter) is a Basic Ingest topic: for the rule it names, never for subscribers. */
export function isBasicIngest(topic: string): boolean {
  return topic.startsWith(BASIC_INGEST_PREFIX);
}

/**
 * AWS IoT's event topics (lifecycle, registry, jobs events): "Client operations allowed:
 * Subscribe", and "Unsupported publish or subscribe operations to reserved topics can result in a
 * terminated connection" (https://docs.aws.amazon.com/iot/latest/developerguide/reserved-topics.html,
 * "Event topics"). Only AWS IoT itself publishes there, so no client can forge an event.
 */
export const AWS_EVENTS_PREFIX = "$aws/events/";

/** Whether only AWS IoT may publish on this topic (an event topic). */
export function isServiceOnlyTopic(topic: string): boolean {
  return topic.startsWith(AWS_EVENTS_PREFIX);
}

/**
 * Why a topic or topic filter (as the bytes on the wire) breaks MQTT's string rules or AWS IoT's
 * limits, or undefined when it does not. MQTT 3.1.1 [MQTT-1.5.3-1]: ill-formed UTF-8 (surrogates
 * included) and [MQTT-1.5.3-2]: U+0000 make the receiver close the connection.
 */
export function topicProblem(topic: Buffer): string | undefined {
  if (topic.length === 0) return "is empty";
  if (!isUtf8(topic)) return "is not well-formed UTF-8 (MQTT 3.1.1 [MQTT-1.5.3-1])";
  if (topic.includes(0)) return "contains U+0000 (MQTT 3.1.1 [MQTT-1.5.3-2])";
  const text = topic.toString("utf8");
  const counted = text.replace(BASIC_INGEST, "");
  const bytes = Buffer.byteLength(counted);
  if (bytes > IOT_MAX_TOPIC_BYTES) {
    return `is ${bytes} bytes; AWS IoT allows ${IOT_MAX_TOPIC_BYTES}`;
  }
  const slashes = counted.split("/").length - 1;
  if (slashes > IOT_MAX_TOPIC_SLASHES) {
    return `has ${slashes} slashes; AWS IoT allows ${IOT_MAX_TOPIC_SLASHES}`;
  }
  return undefined;
}

/**
 * Why a topic filter (as the bytes on the wire) cannot be subscribed to: {@link topicProblem},
 * checked for a shared subscription's `$share/{ShareName}/{TopicFilter}` on its TopicFilter alone
 * ("The two required slashes (/) for $share/{ShareName}/{TopicFilter} are not included in the
 * Maximum number of slashes in topic and topic filter limit"; "{ShareName} must not include the
 * following characters: /, +, or #. The maximum size for {ShareName} is 128 UTF-8 characters",
 * https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html, "Shared subscriptions").
 */
export function topicFilterProblem(filter: Buffer): string | undefined {
  if (!filter.subarray(0, SHARE_PREFIX.length).equals(SHARE_PREFIX_BYTES))
    return topicProblem(filter);
  if (!isUtf8(filter)) return topicProblem(filter);
  const rest = filter.toString("utf8").slice(SHARE_PREFIX.length);
  const slash = rest.indexOf("/");
  if (slash <= 0) return "is a shared subscription ($share/) without {ShareName}/";
  const shareName = rest.slice(0, slash);
  if (/[+#]/.test(shareName)) return "is a shared subscription whose ShareName has + or #";
  const chars = [...shareName].length;
  if (chars > MAX_SHARE_NAME_CHARS) {
    return `is a shared subscription whose ShareName has ${chars} characters; AWS IoT allows ${MAX_SHARE_NAME_CHARS}`;
  }
  return topicProblem(Buffer.from(rest.slice(slash + 1), "utf8"));
}

/** A shared subscription's filter starts so (mqtt.html, "Shared subscriptions"). */
export const SHARE_PREFIX = "$share/";
const SHARE_PREFIX_BYTES = Buffer.from(SHARE_PREFIX);
/** "The maximum size for {ShareName} is 128 UTF-8 characters." */
export const MAX_SHARE_NAME_CHARS = 128;

/**
 * Why a topic name (a PUBLISH's or a will's, as the bytes on the wire) cannot be published to:
 * {@link topicProblem}, or a wildcard, which MQTT 3.1.1 §4.7.1 allows in topic filters only.
 */
export function topicNameProblem(topic: Buffer): string | undefined {
  const problem = topicProblem(topic);
  if (problem) return problem;
  if (topic.includes(0x2b) || topic.includes(0x23)) {
    return "contains a wildcard (+ or #), which only a topic filter may (MQTT 3.1.1 §4.7.1)";
  }
  return undefined;
}
