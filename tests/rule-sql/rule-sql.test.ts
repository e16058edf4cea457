// The parser's errors (line, column, the nearest function name), the bounds and exact numbers of
// evaluation, and the language beyond the conformance table's examples (IN, searched CASE,
// keywords as field names, MQTT 5 properties, the registry).
import { strict as assert } from "node:assert";
import {
  evaluateRule,
  LIMITS,
  parsedOnlyFunctions,
  parseRuleSql,
  RuleEvaluationError,
  RuleSqlError,
  type RuleInput,
  type RuleResult,
} from "../../core/rule-sql";
import { ConfigError } from "../../core/errors";
import { planPipeline } from "../../core/plan";
import { loadStackConfig, parseStackConfig, readRawStackConfig } from "../../core/stack-config";

const PROD_SQL = loadStackConfig("prod").rule.sql;

function run(sql: string, payload: string | Buffer, extra: Partial<RuleInput> = {}): RuleResult {
  return evaluateRule(parseRuleSql(sql), {
    payload,
    topic: "SeattleStoreTemp/store-sensor-seattle1",
    clientId: "store-sensor-seattle1",
    timestamp: 1700000099000,
    newuuid: () => "uuid-1",
    ...extra,
  });
}

/** The record's text for a matched message; fails the test otherwise. */
function record(sql: string, payload: string | Buffer, extra: Partial<RuleInput> = {}): string {
  const r = run(sql, payload, extra);
  assert.ok(r.matched, `expected a match, got ${JSON.stringify(r)}`);
  return r.record.toString("utf8");
}

describe("IoT SQL parser (core/rule-sql/parser)", () => {
  const errors: [string, RegExp, number, number][] = [
    ["SELECT * FROM SeattleStoreTemp", /must name a quoted topic filter/, 1, 15],
    ["SELEC * FROM 'a'", /Expected "SELECT"/, 1, 1],
    ["SELECT * FROM 'a' WHERE", /end of input/, 1, 24],
    ["SELECT temperature\nFROM 'a/#/b'", /# only as the whole last level/, 2, 6],
    ["SELECT * FROM 'a/b+'", /\+ only as a whole level/, 1, 15],
    ["SELECT * FROM ''", /is empty/, 1, 15],
    ["SELECT nosuch(1) FROM 'a'", /unknown function nosuch\(\)/, 1, 8],
    ["SELECT topic(1, 2) FROM 'a'", /topic\(\) takes 0 to 1 argument/, 1, 8],
    ["SELECT a,\n  b c FROM 'a'", /Expected .* but "c" found/, 2, 5],
    ["SELECT * FROM 'a' WHERE x = = 1", /but "=" found/, 1, 29],
    ["SELECT 'unterminated FROM 'a'", /but "a" found/, 1, 28],
    ["SELECT * FROM 'a' extra", /Expected .* but "e" found/, 1, 19],
    ["SELECT\n  parse_tme(timestamp()) FROM 'a'", /did you mean parse_time\(\)\?/, 2, 3],
    ["SELECT Sha265(x) FROM 'a'", /unknown function Sha265\(\); did you mean sha256\(\)\?/, 1, 8],
    ["SELECT crc32(x) FROM 'a'", /unknown function crc32\(\)/, 1, 8],
    ["SELECT cast(x) FROM 'a'", /cast\(\) takes the form cast\(value AS type\)/, 1, 8],
    ["SELECT cast(x AS Float) FROM 'a'", /unknown type/, 1, 8],
    ["SELECT md5(*) FROM 'a'", /\* stands for the payload only in encode/, 1, 12],
    ["SELECT encode(*, 'hex') FROM 'a'", /supports only the 'base64' scheme/, 1, 8],
    ["SELECT x FROM 'a' WHERE y > 1e1000", /outside the Decimal range/, 1, 29],
    [
      "SELECT get_registry_data('DescribeThing', 'a', 'r') AS a,\n get_registry_data('DescribeThing', 'b', 'r') AS b FROM 'a'",
      /more than 1 get_registry_data/,
      2,
      2,
    ],
    ["SELECT get_registry_data('Describe', 'a', 'r') FROM 'a'", /'DescribeThing' or/, 1, 8],
    ["SELECT get_dynamodb('t', 'k') FROM 'a'", /get_dynamodb\(\) takes 4 to 6 argument/, 1, 8],
    [`SELECT ${"(".repeat(5000)}1${")".repeat(5000)} FROM 'a'`, /nests too deeply/, 1, 1],
  ];
  for (const [sql, message, line, column] of errors) {
    it(`rejects ${JSON.stringify(sql.slice(0, 70))} at line ${line}, column ${column}`, () => {
      assert.throws(
        () => parseRuleSql(sql),
        (e: unknown) => {
          assert.ok(e instanceof RuleSqlError, `expected RuleSqlError, got ${String(e)}`);
          assert.match(e.message, message);
          assert.deepEqual([e.line, e.column], [line, column], e.message);
          assert.match(e.message, new RegExp(`at line ${line}, column ${column}$`));
          return true;
        },
      );
    });
  }

  it("the stack config check stops at an unknown function with one line: key, suggestion, line and column", () => {
    const raw = {
      ...readRawStackConfig("prod"),
      ruleSql: "SELECT *,\n  timestmp() AS received_at FROM 'SeattleStoreTemp/+'",
    };
    assert.throws(
      () => planPipeline(parseStackConfig(raw, "prod")),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.equal(e.message.split("\n").length, 1);
        assert.match(
          e.message,
          /^config iot-pipeline:ruleSql = .* is invalid: unknown function timestmp\(\); did you mean timestamp\(\)\? at line 2, column 3$/,
        );
        return true;
      },
    );
  });

  it("parses the rule of every stack", () => {
    for (const stack of ["dev", "prod"]) parseRuleSql(loadStackConfig(stack).rule.sql);
  });

  it("names the functions that call other AWS services", () => {
    const sql =
      "SELECT aws_lambda('arn', *) AS a, get_secret('s', 'SecretString', 'k', 'r') AS s, get_thing_shadow('t', 'r').state AS t FROM 'a' WHERE get_dynamodb('t', 'k', 'v', 'r').x = 1";
    // get_thing_shadow() reads the local Device Shadow service (docs/shadows.md): not parsed-only.
    assert.deepEqual(parsedOnlyFunctions(parseRuleSql(sql)).sort(), [
      "aws_lambda",
      "get_dynamodb",
      "get_secret",
    ]);
  });
});

describe("IoT SQL evaluation (core/rule-sql/evaluate)", () => {
  describe("the prod rule keeps every record as it was sent (issue 17.8)", () => {
    it("a payload that is not JSON goes to the error action, not out as the added fields alone", () => {
      assert.throws(
        () => run(PROD_SQL, Buffer.from("23.5C")),
        (e: unknown) => e instanceof RuleEvaluationError && /not JSON \(5 bytes\)/.test(e.message),
      );
    });

    it("1e309 is a Decimal and stays 1e309 (not null)", () => {
      const text = record(PROD_SQL, '{"temperature":1e309}');
      assert.match(text, /^\{"temperature":1e309,"topic_thing"/);
    });

    it("an integer beyond 2^53 keeps every digit", () => {
      const text = record(
        PROD_SQL,
        '{"count":9007199254740993,"id":123456789012345678901234567890}',
      );
      assert.match(text, /^\{"count":9007199254740993,"id":123456789012345678901234567890,/);
    });

    it("a decimal with more digits than a double holds keeps them", () => {
      const text = record(PROD_SQL, '{"t":21.500000000000000000001}');
      assert.match(text, /^\{"t":21\.500000000000000000001,/);
    });

    it("a __proto__ key is kept as data", () => {
      const text = record(PROD_SQL, '{"__proto__":{"polluted":true},"t":1}');
      assert.match(
        text,
        /^\{"__proto__":\{"polluted":true\},"t":1,"topic_thing":"store-sensor-seattle1"/,
      );
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    });

    it("a number Int and Decimal cannot hold without change is refused, not rounded", () => {
      for (const n of ["1234567890".repeat(4), "0." + "1".repeat(35), "1e1000", "1e-1000"]) {
        assert.throws(
          () => run(PROD_SQL, `{"n":${n}}`),
          (e: unknown) =>
            e instanceof RuleEvaluationError && /the payload's number/.test(e.message),
          n,
        );
      }
    });

    it("SELECT * alone passes the payload's bytes through unchanged", () => {
      const payload = Buffer.from('{ "t" : 1e309 , "n": 12345678901234567890123 }');
      const r = run("SELECT * FROM 'SeattleStoreTemp/+'", payload);
      assert.ok(r.matched && r.record.equals(payload));
    });
  });

  describe("bounds on what is evaluated (issue 17.5)", () => {
    it("JSON nested 10,000 deep is refused without exhausting the stack", () => {
      const deep = "[".repeat(10000) + "]".repeat(10000);
      assert.throws(
        () => run(PROD_SQL, deep),
        (e: unknown) =>
          e instanceof RuleEvaluationError && /nests 10000 levels deep/.test(e.message),
      );
    });

    it(`JSON nested ${LIMITS.depth} deep is still evaluated`, () => {
      const deep = `{"a":${"[".repeat(LIMITS.depth - 1)}${"]".repeat(LIMITS.depth - 1)}}`;
      assert.ok(run("SELECT a FROM 'SeattleStoreTemp/+'", deep).matched);
    });

    it("a payload over 128 KiB is refused", () => {
      const big = JSON.stringify({ s: "x".repeat(LIMITS.payloadBytes) });
      assert.throws(
        () => run(PROD_SQL, big),
        (e: unknown) =>
          e instanceof RuleEvaluationError && /over the rule engine's bound/.test(e.message),
      );
    });

    it("a payload on a topic outside FROM is not even read", () => {
      const deep = "[".repeat(10000) + "]".repeat(10000);
      assert.deepEqual(run(PROD_SQL, deep, { topic: "Elsewhere/x" }), {
        matched: false,
        reason: "topic",
      });
    });

    it("a decoded value is bounded like the payload", () => {
      const deep = Buffer.from("[".repeat(2000) + "]".repeat(2000)).toString("base64");
      assert.throws(
        () => run("SELECT decode(d, 'base64') AS x FROM '#'", JSON.stringify({ d: deep })),
        (e: unknown) =>
          e instanceof RuleEvaluationError && /nests 2000 levels deep/.test(e.message),
      );
    });
  });

  it("a nested alias never writes into the payload: a message's later rules read it as sent", () => {
    // "The rule is activated for each message sent to an MQTT topic that matches the topic
    // filter", and its SELECT "Extracts information from the payload of an incoming message"
    // (https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-reference.html): every rule,
    // and every item of one SELECT, reads the payload as it came in ("You can use the SELECT
    // clause to extract information from incoming MQTT messages", iot-sql-select.html), never
    // what another rule's or item's output wrote. One Buffer here, as a message's rules receive
    // it: its parsed value is shared between them.
    const payload = Buffer.from('{"a":{"b":1},"t":20}');
    assert.equal(record("SELECT a, 2 AS a.y FROM '#'", payload), '{"a":{"b":1,"y":2}}');
    assert.equal(
      record("SELECT * AS p, 1 AS p.x FROM '#'", payload),
      '{"p":{"a":{"b":1},"t":20,"x":1}}',
    );
    assert.equal(record("SELECT a, x FROM '#'", payload), '{"a":{"b":1}}');
    // Within one statement too: an item reads the payload, not what an earlier item wrote.
    assert.equal(
      record("SELECT a, 2 AS a.y, a AS z FROM '#'", payload),
      '{"a":{"b":1,"y":2},"z":{"b":1}}',
    );
  });

  describe("the language beyond the guide's examples", () => {
    const cases: [string, string, string][] = [
      [
        "SELECT 3 IN [1, 2, 3] AS a, 'x' IN ['y'] AS b, 1 IN 'abc' AS c FROM '#'",
        "{}",
        '{"a":true,"b":false}',
      ],
      ["SELECT * FROM '#' WHERE color IN ['red', 'green']", '{"color":"red"}', '{"color":"red"}'],
      ["SELECT {'b': 1} IN arr AS o FROM '#'", '{"arr":[{"a":1},{"b":1}]}', '{"o":true}'],
      [
        "SELECT CASE WHEN t > 30 THEN 'hot' WHEN t > 15 THEN 'mild' ELSE 'cold' END AS feel FROM '#'",
        '{"t":21.5}',
        '{"feel":"mild"}',
      ],
      ["SELECT * AS payload, 1 AS v FROM '#'", '{"a":1}', '{"payload":{"a":1},"v":1}'],
      // SELECT *, …: an added key that the payload has replaces its value where it stands.
      ["SELECT *, 1 AS a FROM '#'", '{"a":0,"b":2}', '{"a":1,"b":2}'],
      ["SELECT *, 1 AS x.y FROM '#'", '{"x":{"z":0}}', '{"x":{"z":0,"y":1}}'],
      ["SELECT *, 1 AS n FROM '#'", "{ }", '{ "n":1}'],
      ["SELECT *, missing AS m FROM '#'", '{ "a" : 1 }', '{ "a" : 1 }'],
      ["SELECT *, 2 AS n FROM '#'", '{"a":1}  ', '{"a":1,"n":2}'],
      [
        "SELECT value, a.select AS s, a.from AS f FROM '#'",
        '{"value":1,"a":{"select":2,"from":3}}',
        '{"value":1,"s":2,"f":3}',
      ],
      ["SELECT VALUE value FROM '#'", '{"value":[1,2]}', "[1,2]"],
      [
        "SELECT regexp_replace('2024-05', '(?<y>\\d+)-(?<m>\\d+)', '$2/$1') AS r FROM '#'",
        "{}",
        '{"r":"05/2024"}',
      ],
      [
        "SELECT decode(e, 'base64').a[1] AS x FROM '#'",
        JSON.stringify({ e: Buffer.from('{"a":[5,6]}').toString("base64") }),
        '{"x":6}',
      ],
      [
        "SELECT get_mqtt_property('format_indicator') AS f, get_mqtt_property('content_type') AS c FROM '#'",
        "{}",
        '{"f":"UNSPECIFIED_BYTES"}',
      ],
      ["SELECT get_user_properties('k') AS k FROM '#'", "{}", "{}"],
      [
        "SELECT aws_lambda('arn:aws:lambda:us-east-1:1:function:f', *) AS r, 1 AS n FROM '#'",
        "{}",
        '{"n":1}',
      ],
      [
        "SELECT 12345678901234567890 + 1 AS big, 2 * 0.5 AS whole FROM '#'",
        "{}",
        '{"big":12345678901234567891,"whole":1}',
      ],
      [
        "SELECT 'it''s' AS q, \"say \\\"hi\\\"\" AS d, regexp_replace('a1b22', '\\d+', '#') AS r FROM '#'",
        "{}",
        '{"q":"it\'s","d":"say \\"hi\\"","r":"a#b#"}',
      ],
      [
        "SELECT parse_time('EEEE d MMMM yyyy, hh:mm a Z', 0, 'Asia/Kolkata') AS t FROM '#'",
        "{}",
        '{"t":"Thursday 1 January 1970, 05:30 AM +0530"}',
      ],
      ["SELECT parse_time('yyyy', 0, 'Not/AZone') AS t, 1 AS n FROM '#'", "{}", '{"n":1}'],
    ];
    for (const [sql, payload, want] of cases) {
      it(`${sql} on ${payload} → ${want}`, () => {
        assert.equal(record(sql, payload), want);
      });
    }

    it("MQTT 5 properties and user properties, when the message has them", () => {
      const mqtt = {
        contentType: "application/json",
        payloadFormatIndicator: 1 as const,
        responseTopic: "r/t",
        correlationData: Buffer.from("cid"),
        userProperties: [
          ["k", "v1"],
          ["o", "x"],
          ["k", "v2"],
        ] as const,
      };
      assert.equal(
        record(
          "SELECT get_mqtt_property('format_indicator') AS f, get_mqtt_property('content_type') AS c, get_mqtt_property('response_topic') AS r, get_mqtt_property('correlation_data') AS d, get_user_properties('k') AS k FROM '#'",
          "{}",
          { mqtt },
        ),
        '{"f":"UTF8_DATA","c":"application/json","r":"r/t","d":"Y2lk","k":["v1","v2"]}',
      );
    });

    it("get_registry_data() answers from the registry it is given", () => {
      const registry: RuleInput["registry"] = (api, thing) =>
        api === "DescribeThing" && thing === "t1"
          ? { thingName: "t1", thingTypeName: "sensor" }
          : undefined;
      const sql =
        "SELECT get_registry_data('DescribeThing', topic(2), 'arn:aws:iam::1:role/r').thingTypeName AS type FROM 'a/+'";
      assert.equal(record(sql, "{}", { topic: "a/t1", registry }), '{"type":"sensor"}');
      assert.equal(record(sql, "{}", { topic: "a/t2", registry }), "{}");
    });

    it("* as a value with a payload that is not JSON is refused rather than guessed", () => {
      assert.throws(
        () => run("SELECT * AS p FROM '#'", Buffer.from([0xff, 0x00])),
        (e: unknown) =>
          e instanceof RuleEvaluationError && /encode\(\*, 'base64'\)/.test(e.message),
      );
    });
  });
});
