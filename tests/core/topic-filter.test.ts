// The one MQTT topic-filter matcher (core/topics.ts), which the rule engine's FROM and the local
// provisioning service's response routing share; cases from AWS IoT's Topics page
// (https://docs.aws.amazon.com/iot/latest/developerguide/topics.html).
import { strict as assert } from "node:assert";
import { topicMatches } from "../../core/topics";

describe("topic filters", () => {
  const topics: [string, string, boolean][] = [
    ["a/+", "a/b", true],
    ["a/+", "a/b/c", false],
    // The Topics page: sensor/# receives sensor/ and below, but not sensor.
    ["a/#", "a", false],
    ["a/#", "a/", true],
    ["a/#", "a/b/c", true],
    ["#", "$aws/things/x", false],
    ["$aws/things/+", "$aws/things/x", true],
    ["+/b", "a/b", true],
    ["a/b", "a/b/", false],
  ];
  for (const [filter, topic, want] of topics) {
    it(`topic filter ${filter} ${want ? "matches" : "does not match"} ${topic}`, () => {
      assert.equal(topicMatches(filter, topic), want);
    });
  }
});
