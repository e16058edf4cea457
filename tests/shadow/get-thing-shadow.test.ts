// IoT SQL's get_thing_shadow() reads the local Device Shadow service: the function page's own two
// examples (https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-functions.html#iot-sql-function-get-thing-shadow),
// "Returns the specified shadow of the specified thing", with a named shadow and the unnamed one.
import * as assert from "node:assert/strict";
import { compileRule, parseRuleSql, type ShadowLookup } from "../../core/rule-sql";
import { compileTemplate } from "../../core/topic-rules/template";
import {
  applyUpdate,
  getDocument,
  parseUpdate,
  type StoredShadow,
} from "../../local/shadow/document";

const ROLE = "arn:aws:iam::123456789012:role/AllowsThingShadowAccess";
const NAMED = `SELECT * from 'topic/subtopic' WHERE get_thing_shadow("MyThing","MyThingShadow","${ROLE}").state.reported.alarm = 'ON'`;
const CLASSIC = `SELECT * from 'topic/subtopic' WHERE get_thing_shadow("MyThing","${ROLE}").state.reported.alarm = 'ON'`;

function lookup(shadows: Record<string, StoredShadow>): ShadowLookup {
  return (thing, name) => {
    const s = shadows[`${thing}/${name ?? ""}`];
    return s === undefined ? undefined : getDocument(s, Date.now(), undefined);
  };
}

const alarm = (value: string) =>
  applyUpdate(undefined, parseUpdate({ state: { reported: { alarm: value } } }), Date.now()).next;

function matched(sql: string, shadow: ShadowLookup | undefined): boolean {
  return compileRule(parseRuleSql(sql)).evaluate({
    payload: "{}",
    topic: "topic/subtopic",
    timestamp: Date.now(),
    newuuid: () => "u",
    shadow,
  }).matched;
}

describe("get_thing_shadow() reads the local shadow (iot-sql-functions.html)", () => {
  it("the page's named-shadow example matches when MyThing's MyThingShadow reports alarm ON", () => {
    assert.equal(matched(NAMED, lookup({ "MyThing/MyThingShadow": alarm("ON") })), true);
    assert.equal(matched(NAMED, lookup({ "MyThing/MyThingShadow": alarm("OFF") })), false);
    // The classic shadow is another shadow: the named example does not read it.
    assert.equal(matched(NAMED, lookup({ "MyThing/": alarm("ON") })), false);
  });

  it("the page's unnamed-shadow example ('omit the shadowName parameter') reads the classic shadow", () => {
    assert.equal(matched(CLASSIC, lookup({ "MyThing/": alarm("ON") })), true);
    assert.equal(matched(CLASSIC, lookup({ "MyThing/MyThingShadow": alarm("ON") })), false);
  });

  it('reads the shadow in an action\'s substitution template too ("expression can be any expression supported by AWS IoT in SELECT clauses, WHERE clauses ... This includes functions", iot-substitution-templates.html)', () => {
    const template = compileTemplate(
      `alarm-\${get_thing_shadow("MyThing","${ROLE}").state.reported.alarm}`,
    );
    const input = {
      payload: "{}",
      topic: "topic/subtopic",
      timestamp: Date.now(),
      newuuid: () => "u",
      shadow: lookup({ "MyThing/": alarm("ON") }),
    };
    assert.equal(template.render(input), "alarm-ON");
  });

  it("a thing without the shadow gives Undefined (the WHERE is not true)", () => {
    assert.equal(matched(CLASSIC, lookup({})), false);
    assert.equal(matched(CLASSIC, undefined), false);
  });
});
