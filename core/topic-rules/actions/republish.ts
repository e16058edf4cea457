// The republish action's parameters: the topic (a substitution template), the QoS and the MQTT 5
// headers (https://docs.aws.amazon.com/iot/latest/developerguide/republish-rule-action.html;
// the headers' fields and bounds: AWS::IoT::TopicRule RepublishActionHeaders,
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-iot-topicrule-republishactionheaders.html).
import { checkTemplate, ParamReader, type ActionDefinition } from "./action";

/** One MQTT 5 user property the republished message carries (both sides templates). */
export interface RepublishUserProperty {
  readonly key: string;
  readonly value: string;
}

/** MQTT 5 headers of the republished message; each a substitution template. */
export interface RepublishHeaders {
  readonly payloadFormatIndicator?: "UTF8_DATA" | "UNSPECIFIED_BYTES";
  readonly contentType?: string;
  readonly responseTopic?: string;
  /** Base64 of the binary correlation data (after substitution). */
  readonly correlationData?: string;
  /** Seconds, an integer after substitution. */
  readonly messageExpiry?: string;
  readonly userProperties?: readonly RepublishUserProperty[];
}

export interface RepublishParams {
  /** The topic, a substitution template; `$$` stands for a reserved topic's leading `$`. */
  readonly topic: string;
  /** @default 0 */
  readonly qos: 0 | 1;
  readonly headers?: RepublishHeaders;
}

export interface RepublishSpec {
  readonly kind: "republish";
  readonly params: RepublishParams;
}

/**
 * The reserved topics a republish may reach: the page's own example is the device shadow's
 * `$$aws/things/MyThing/shadow/update`, and it says republishing to job topics is not
 * supported. Other `$aws/` topics are refused here as the page does not name them.
 */
const ALLOWED_RESERVED = /^\$aws\/things\/[^/]+\/shadow\//;

/** Why a republish topic (as configured, `$$` for `$`) is refused; undefined when it is fine. */
export function republishTopicProblem(topic: string): string | undefined {
  if (/[+#]/.test(topic.replace(/\$\{[^}]*\}/g, ""))) {
    return "a republish topic names one topic: remove + and #";
  }
  if (topic.startsWith("$") && !topic.startsWith("${")) {
    if (!topic.startsWith("$$")) {
      return "to republish to a reserved topic write $$ for its leading $ (e.g. $$aws/things/MyThing/shadow/update)";
    }
    const reserved = topic.slice(1);
    if (reserved.startsWith("$aws/things/") && /\/jobs(\/|$)/.test(reserved)) {
      return "republishing to reserved job topics is not supported by AWS IoT";
    }
    if (!ALLOWED_RESERVED.test(reserved)) {
      return "the only reserved topics a republish may reach are the device shadow's ($$aws/things/<thing>/shadow/...); use a topic of your own";
    }
  }
  return undefined;
}

const HEADER_KEYS = [
  "payloadFormatIndicator",
  "contentType",
  "responseTopic",
  "correlationData",
  "messageExpiry",
  "userProperties",
];

function parseHeaders(p: ParamReader): RepublishHeaders | undefined {
  const raw = p.raw.headers;
  if (raw === undefined) return undefined;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    p.fail("headers", raw, `set a map of ${HEADER_KEYS.join(", ")}`);
  }
  const h: ParamReader = new ParamReader(
    raw as Record<string, unknown>,
    { ...p.ctx, at: `${p.ctx.at}.headers` },
    HEADER_KEYS,
  );
  const indicator = h.raw.payloadFormatIndicator;
  if (indicator !== undefined && indicator !== "UTF8_DATA" && indicator !== "UNSPECIFIED_BYTES") {
    h.fail("payloadFormatIndicator", indicator, "use UTF8_DATA or UNSPECIFIED_BYTES");
  }
  const userProperties = h.raw.userProperties;
  let props: RepublishUserProperty[] | undefined;
  if (userProperties !== undefined) {
    if (!Array.isArray(userProperties) || userProperties.length === 0) {
      h.fail("userProperties", userProperties, "set a list of {key, value}");
    }
    props = userProperties.map((u: unknown, i: number) => {
      const at = `${h.ctx.at}.userProperties[${i}]`;
      if (typeof u !== "object" || u === null)
        h.fail(`userProperties[${i}]`, u, "set {key, value}");
      const r: ParamReader = new ParamReader(u as Record<string, unknown>, { ...h.ctx, at }, [
        "key",
        "value",
      ]);
      return { key: r.template("key"), value: r.template("value") };
    });
  }
  const contentType = h.optionalTemplate("contentType");
  const responseTopic = h.optionalTemplate("responseTopic");
  const correlationData = h.optionalTemplate("correlationData");
  const messageExpiry = h.optionalTemplate("messageExpiry");
  return {
    ...(indicator === undefined ? {} : { payloadFormatIndicator: indicator }),
    ...(contentType === undefined ? {} : { contentType }),
    ...(responseTopic === undefined ? {} : { responseTopic }),
    ...(correlationData === undefined ? {} : { correlationData }),
    ...(messageExpiry === undefined ? {} : { messageExpiry }),
    ...(props === undefined ? {} : { userProperties: props }),
  };
}

export const republishDefinition: ActionDefinition<"republish", RepublishParams> = {
  kind: "republish",
  failedAction: "RepublishAction",
  page: "https://docs.aws.amazon.com/iot/latest/developerguide/republish-rule-action.html",
  parse(raw, ctx) {
    const p: ParamReader = new ParamReader(raw, ctx, ["topic", "qos", "headers"]);
    const topic = p.template("topic", 256);
    const problem = republishTopicProblem(topic);
    if (problem !== undefined) p.fail("topic", topic, problem);
    checkTemplate(topic, (why) => p.fail("topic", topic, why));
    const qos = p.oneOf<0 | 1>("qos", [0, 1], 0);
    const headers = parseHeaders(p);
    return { topic, qos, ...(headers === undefined ? {} : { headers }) };
  },
};
