// Policy 21, iot-topic-rule-republish-topic: a happy-path rule, then one change per test with the
// exact violation. What AWS allows is the republish action's page
// (https://docs.aws.amazon.com/iot/latest/developerguide/republish-rule-action.html): a reserved
// topic is written with `$$` for its `$` (the page's example: `$$aws/things/MyThing/shadow/update`),
// and "Republishing to reserved job topics is not supported".
import * as assert from "node:assert/strict";
import { lines, res, violations } from "./helpers";

const POLICY = "iot-topic-rule-republish-topic";

const rule = (republishes: unknown[], extra: Record<string, unknown> = {}) =>
  res("aws:iot/topicRule:TopicRule", "alerts", {
    name: "alerts",
    enabled: true,
    sql: "SELECT * FROM 'SeattleStoreTemp/+' WHERE temperature > 15",
    sqlVersion: "2016-03-23",
    republishes,
    errorAction: { cloudwatchLogs: { logGroupName: "/iot/rules/alerts/errors", roleArn: "arn:r" } },
    ...extra,
  });

const republish = (topic: string) => ({ topic, qos: 1, roleArn: "arn:r" });

async function of(resource: ReturnType<typeof rule>): Promise<string[]> {
  return lines((await violations([resource], "prod", {})).filter((v) => v.policy === POLICY));
}

describe("policy 21: iot-topic-rule-republish-topic", () => {
  it("a topic of the user's own, a template in it, and the device shadow's reserved topic pass", async () => {
    assert.deepEqual(await of(rule([republish("alerts/${topic(2)}")])), []);
    assert.deepEqual(await of(rule([republish("$$aws/things/MyThing/shadow/update")])), []);
    assert.deepEqual(
      await of(rule([republish("$$aws/things/${topic(2)}/shadow/name/alerts/update")])),
      [],
    );
    assert.deepEqual(await of(rule([republish("${topic()}/republish")])), []);
  });

  it("a reserved topic written with one $ fails: AWS wants $$", async () => {
    assert.deepEqual(await of(rule([republish("$aws/things/MyThing/shadow/update")])), [
      `mandatory ${POLICY}: topic rule alerts republishes[0].topic "$aws/things/MyThing/shadow/update": to republish to a reserved topic write $$ for its leading $ (e.g. $$aws/things/MyThing/shadow/update)`,
    ]);
  });

  it("a job topic fails: AWS does not support republishing to it", async () => {
    assert.deepEqual(await of(rule([republish("$$aws/things/MyThing/jobs/get")])), [
      `mandatory ${POLICY}: topic rule alerts republishes[0].topic "$$aws/things/MyThing/jobs/get": republishing to reserved job topics is not supported by AWS IoT`,
    ]);
  });

  it("another reserved topic (lifecycle events, Basic Ingest) fails", async () => {
    const events = "$$aws/events/presence/connected/x";
    assert.deepEqual(await of(rule([republish(events)])), [
      `mandatory ${POLICY}: topic rule alerts republishes[0].topic "${events}": the only reserved topics a republish may reach are the device shadow's ($$aws/things/<thing>/shadow/...); use a topic of your own`,
    ]);
  });

  it("a topic filter fails: a republish names one topic", async () => {
    assert.deepEqual(await of(rule([republish("alerts/#")])), [
      `mandatory ${POLICY}: topic rule alerts republishes[0].topic "alerts/#": a republish topic names one topic: remove + and #`,
    ]);
  });

  it("the republish error action is checked too, and every republish action of the rule", async () => {
    const r = rule([republish("ok/1"), republish("$$aws/rules/other/x")], {
      errorAction: { republish: { topic: "$$aws/things/t/jobs/x", roleArn: "arn:r" } },
    });
    assert.deepEqual(await of(r), [
      `mandatory ${POLICY}: topic rule alerts republishes[1].topic "$$aws/rules/other/x": the only reserved topics a republish may reach are the device shadow's ($$aws/things/<thing>/shadow/...); use a topic of your own`,
      `mandatory ${POLICY}: topic rule alerts errorAction.republish.topic "$$aws/things/t/jobs/x": republishing to reserved job topics is not supported by AWS IoT`,
    ]);
  });
});
