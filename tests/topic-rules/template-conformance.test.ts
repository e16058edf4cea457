// Substitution templates (`${expression}` in an action's parameters), one row per behaviour of the
// developer guide's page, each citing it; the expected values are the page's, never the engine's.
// Rows marked `local` are where the page says nothing and the local engine chooses (docs/iot-sql.md
// says so too). https://docs.aws.amazon.com/iot/latest/developerguide/iot-substitution-templates.html
import { strict as assert } from "node:assert";
import { compileRule, parseRuleSql, type RuleInput } from "../../core/rule-sql";
import { compileTemplate, parseTemplate, TemplateError } from "../../core/topic-rules/template";

const PAGE =
  "https://docs.aws.amazon.com/iot/latest/developerguide/iot-substitution-templates.html";

/** The page's example message, published to my/iot/topic. */
const EXAMPLE = {
  deviceid: "iot123",
  temp: 54.98,
  humidity: 32.43,
  coords: { latitude: 47.615694, longitude: -122.3359976 },
};

function input(payload: unknown = EXAMPLE, topic = "my/iot/topic"): RuleInput {
  return {
    payload: Buffer.from(JSON.stringify(payload)),
    topic,
    clientId: "iotconsole-1511213971966-0",
    timestamp: 1579637878451,
    newuuid: () => "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
  };
}

interface Row {
  /** What the page says (quoted or closely paraphrased), or `local: ...` where it says nothing. */
  readonly says: string;
  readonly template: string;
  readonly payload?: unknown;
  readonly want: string;
}

const ROWS: readonly Row[] = [
  {
    says: 'the page\'s example: republish topic "${topic()}/republish" for a message on my/iot/topic gives my/iot/topic/republish',
    template: "${topic()}/republish",
    want: "my/iot/topic/republish",
  },
  {
    says: '"expression can be any expression supported by AWS IoT in SELECT clauses, WHERE clauses": a function',
    template: "${upper(deviceid)}",
    want: "IOT123",
  },
  {
    says: '"This includes functions, operators, and information present in the original message payload": an operator',
    template: "${humidity + 10}",
    want: "42.43",
  },
  {
    says: '"information present in the original message payload": a nested field',
    template: "${coords.latitude}",
    want: "47.615694",
  },
  {
    says: '"This expression can be plugged into an action field": text around it and several expressions in one field',
    template: "devices/${deviceid}/${topic(1)}",
    want: "devices/iot123/my",
  },
  {
    says: '"This includes functions": a function with a nested expression (braces in strings)',
    template: "${concat('a}', deviceid)}",
    want: "a}iot123",
  },
  {
    says: "local: a key the payload lacks is Undefined, which fills in as empty text (the page does not say)",
    template: "alerts/${nothing}",
    want: "alerts/",
  },
  {
    says: "local: an object fills in as its JSON (the page does not say)",
    template: "${coords}",
    want: '{"latitude":47.615694,"longitude":-122.3359976}',
  },
];

describe(`substitution templates (${PAGE})`, () => {
  for (const row of ROWS) {
    it(`${row.says}: ${row.template} → ${JSON.stringify(row.want)}`, () => {
      assert.equal(compileTemplate(row.template).render(input(row.payload)), row.want);
    });
  }

  it("\"you can't reference an alias created using the AS clause\": the SELECT's alias is not in the template's scope", () => {
    // The page's example rule: SELECT *, timestamp() AS timestamp. The template sees the original
    // payload, so ${deviceid} is there and an alias of the SELECT is not.
    const rule = compileRule(parseRuleSql("SELECT deviceid AS id FROM 'my/iot/topic'"));
    const result = rule.evaluate(input());
    assert.ok(result.matched);
    assert.deepEqual(result.output, { id: "iot123" });
    assert.equal(compileTemplate("${id}").render(input()), "");
    assert.equal(compileTemplate("${deviceid}").render(input()), "iot123");
  });

  it('the page\'s example end to end: the rule "SELECT *, timestamp() AS timestamp" republishes its output to ${topic()}/republish', () => {
    const rule = compileRule(
      parseRuleSql("SELECT *, timestamp() AS timestamp FROM 'my/iot/topic'"),
    );
    const result = rule.evaluate(input());
    assert.ok(result.matched);
    assert.deepEqual(JSON.parse(result.record.toString()), {
      ...EXAMPLE,
      timestamp: 1579637878451,
    });
    assert.equal(compileTemplate("${topic()}/republish").render(input()), "my/iot/topic/republish");
  });

  it("text without ${...} is the same for every message; a lone $ is text", () => {
    const t = parseTemplate("alerts/$1/x");
    assert.equal(t.dynamic, false);
    assert.equal(compileTemplate("alerts/$1/x").render(input()), "alerts/$1/x");
  });

  for (const [template, why] of [
    ["alerts/${topic(2)", /has no closing \}/],
    ["alerts/${}", /is empty/],
    ["${upper(}", /is not an IoT SQL expression/],
    ["${nosuchfunction(1)}", /is not an IoT SQL expression/],
  ] as const) {
    it(`refuses ${template}: ${String(why)}`, () => {
      assert.throws(
        () => parseTemplate(template),
        (e: unknown) => e instanceof TemplateError && why.test(e.message),
      );
    });
  }
});
