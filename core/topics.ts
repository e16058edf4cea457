// The devices' topics: the stack's telemetry topic is a template in which `{thing}` stands for
// the thing name, shared by the IoT policy, the local pipeline, the simulator and the benchmark;
// and the one matcher of a topic against an MQTT topic filter, for the rule engine and the broker.

/**
 * AWS IoT's lifecycle event topics, by event: the client id is the last level
 * (https://docs.aws.amazon.com/iot/latest/developerguide/life-cycle-events.html).
 */
export const LIFECYCLE_TOPIC = {
  connected: "$aws/events/presence/connected/",
  disconnected: "$aws/events/presence/disconnected/",
  connectFailed: "$aws/events/presence/connect_failed/",
  subscribed: "$aws/events/subscriptions/subscribed/",
  unsubscribed: "$aws/events/subscriptions/unsubscribed/",
} as const;

/** The placeholder a topic template uses for the thing name. */
export const THING_PLACEHOLDER = "{thing}";

/** The topic one thing publishes to. */
export function telemetryTopicFor(template: string, thing: string): string {
  return template.split(THING_PLACEHOLDER).join(thing);
}

/** The MQTT filter that matches every thing's topic: `+` for the thing name. */
export function telemetryTopicFilter(template: string): string {
  return telemetryTopicFor(template, "+");
}

/**
 * MQTT topic-filter matching as the Topics page describes it
 * (https://docs.aws.amazon.com/iot/latest/developerguide/topics.html): `+` matches one level, `#` every
 * level at and below its own, so `sensor/#` matches `sensor/` and `sensor/a/b` but not `sensor`.
 * Topics starting with `$` need a filter that names that first level. Compiled once per filter.
 */
export function compileTopicFilter(filter: string): (topic: string) => boolean {
  const f = filter.split("/");
  const hashAt = f[f.length - 1] === "#" ? f.length - 1 : -1;
  const wildFirst = f[0] === "+" || f[0] === "#";
  return (topic) => {
    if (wildFirst && topic.charCodeAt(0) === 36) return false;
    let pos = 0;
    for (let i = 0; i < f.length; i++) {
      if (pos < 0) return false;
      if (i === hashAt) return true;
      const end = topic.indexOf("/", pos);
      if (f[i] !== "+") {
        const level = f[i];
        const len = (end < 0 ? topic.length : end) - pos;
        if (len !== level.length || !topic.startsWith(level, pos)) return false;
      }
      pos = end < 0 ? -1 : end + 1;
    }
    return pos < 0;
  };
}

export function topicMatches(filter: string, topic: string): boolean {
  return compileTopicFilter(filter)(topic);
}
