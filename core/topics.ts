// The devices' topics: the stack's telemetry topic is a template in which `{thing}` stands for
// the thing name, shared by the IoT policy, the local pipeline, the simulator and the benchmark.

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
