// Table tests of IoT SQL: statements with inputs and expected outputs, and syntax errors with positions.
import { strict as assert } from "node:assert";
import { evaluateRule, parseRuleSql, RuleSqlError, topicMatches } from "../../core/rule-sql";
import { loadStackConfig } from "../../core/stack-config";

const reading = {
  thing: "store-sensor-seattle1",
  timestamp: 1700000000000,
  temperature: 21.5,
  max_temperature: 24,
  min_temperature: 12,
  nested: { a: { b: "deep" }, list: [10, 20] },
};

interface Row {
  sql: string;
  payload?: unknown;
  topic?: string;
  want: unknown;
}

const NO_MATCH_TOPIC = { matched: false, reason: "topic" };
const NO_MATCH_WHERE = { matched: false, reason: "where" };

const rows: Row[] = [
  { sql: "SELECT * FROM 'SeattleStoreTemp/1'", want: reading },
  { sql: "SELECT * FROM 'SeattleStoreTemp/1'", topic: "SeattleStoreTemp/2", want: NO_MATCH_TOPIC },
  {
    sql: "SELECT *, topic(2) AS topic_thing, timestamp() AS received_at FROM 'SeattleStoreTemp/+'",
    topic: "SeattleStoreTemp/store-sensor-seattle1",
    want: { ...reading, topic_thing: "store-sensor-seattle1", received_at: 1700000099000 },
  },
  {
    sql: "SELECT temperature, thing FROM 'SeattleStoreTemp/#'",
    want: { temperature: 21.5, thing: "store-sensor-seattle1" },
  },
  { sql: "SELECT temperature AS t FROM '#'", want: { t: 21.5 } },
  { sql: "SELECT nested.a.b FROM '#'", want: { b: "deep" } },
  { sql: "SELECT nested.list[1] AS second FROM '#'", want: { second: 20 } },
  { sql: "SELECT temperature AS reading.celsius FROM '#'", want: { reading: { celsius: 21.5 } } },
  { sql: "SELECT missing, temperature FROM '#'", want: { temperature: 21.5 } },
  { sql: "SELECT missing.deeper AS x FROM '#'", want: {} },
  { sql: "SELECT topic(9) AS level FROM '#'", want: {} },
  { sql: "SELECT topic('x') AS level FROM '#'", want: {} },
  {
    sql: "SELECT topic() AS t, topic(1) AS first FROM '#'",
    want: { t: "SeattleStoreTemp/1", first: "SeattleStoreTemp" },
  },
  {
    sql: "SELECT clientid() AS c, newuuid() AS id FROM '#'",
    want: { c: "store-sensor-seattle1", id: "uuid-1" },
  },
  { sql: "SELECT temperature * 9 / 5 + 32 AS f FROM '#'", want: { f: 70.7 } },
  { sql: "SELECT (max_temperature - min_temperature) % 5 AS r FROM '#'", want: { r: 2 } },
  { sql: "SELECT -temperature AS neg FROM '#'", want: { neg: -21.5 } },
  { sql: "SELECT thing + 1 AS bad FROM '#'", want: {} },
  { sql: "SELECT temperature / 0 AS bad FROM '#'", want: {} },
  {
    sql: "SELECT 'a' + 'b' AS s, 42 AS n, true AS yes, null AS nothing FROM '#'",
    want: { s: "ab", n: 42, yes: true, nothing: null },
  },
  {
    sql: "SELECT temperature > 20 AS warm, temperature <= 20 AS cold FROM '#'",
    want: { warm: true, cold: false },
  },
  { sql: "SELECT temperature + 1 FROM '#'", want: { _1: 22.5 } },
  {
    sql: "SELECT [temperature, missing, 1] AS l, {'t': temperature, 'm': missing} AS o FROM '#'",
    want: { l: [21.5, 1], o: { t: 21.5 } },
  },
  { sql: "SELECT VALUE temperature FROM '#'", want: 21.5 },
  {
    sql: "SELECT upper(thing) AS u, abs(-3) AS a, concat(thing, '/', 1) AS c FROM '#'",
    want: { u: "STORE-SENSOR-SEATTLE1", a: 3, c: "store-sensor-seattle1/1" },
  },
  // WHERE runs before SELECT, sees the payload (not the aliases) and must be true to match.
  { sql: "SELECT * FROM '#' WHERE temperature > 20", want: reading },
  { sql: "SELECT * FROM '#' WHERE temperature > 30", want: NO_MATCH_WHERE },
  { sql: "SELECT * FROM '#' WHERE missing > 30", want: NO_MATCH_WHERE },
  { sql: "SELECT * FROM '#' WHERE NOT missing = 1", want: NO_MATCH_WHERE },
  { sql: "SELECT temperature AS t FROM '#' WHERE t > 0", want: NO_MATCH_WHERE },
  {
    sql: "SELECT thing FROM '#' WHERE thing = 'store-sensor-seattle1' AND (temperature < 0 OR max_temperature >= 24)",
    want: { thing: "store-sensor-seattle1" },
  },
  { sql: "SELECT thing FROM '#' WHERE thing <> \"store-sensor-seattle1\"", want: NO_MATCH_WHERE },
  // AWS's operator table: AND/OR need two Booleans; an Undefined operand makes it Undefined.
  {
    sql: "SELECT thing FROM '#' WHERE thing != 'other' OR missing",
    want: NO_MATCH_WHERE,
  },
  {
    sql: "SELECT thing FROM '#' WHERE thing != 'other' OR false",
    want: { thing: "store-sensor-seattle1" },
  },
  { sql: "select temperature from '+/+' where temperature = 21.5", want: { temperature: 21.5 } },
  // Operand conversions: numeric strings become Decimals, "true"/"false" strings Booleans.
  { sql: "SELECT * FROM '#' WHERE temperature > '20'", want: reading },
  {
    sql: "SELECT '3' * 2 AS n, '1' + 1 AS m, - '4' AS neg FROM '#'",
    want: { n: 6, m: 2, neg: -4 },
  },
  { sql: "SELECT 'abc' < 'abd' AS cmp, thing * 2 AS bad FROM '#'", want: {} },
  {
    sql: "SELECT 'TRUE' AND true AS a, NOT 'false' AS b, 1 AND true AS c FROM '#'",
    want: { a: true, b: true },
  },
  // A payload that is not JSON: * passes the bytes through, fields are Undefined.
  { sql: "SELECT * FROM '#'", payload: "not json", want: Buffer.from("not json") },
  { sql: "SELECT temperature, topic(2) AS n FROM '#'", payload: "not json", want: { n: "1" } },
];

describe("IoT SQL (core/rule-sql)", () => {
  for (const r of rows) {
    const topic = r.topic ?? "SeattleStoreTemp/1";
    it(`${r.sql} on ${topic} → ${JSON.stringify(r.want)}`, () => {
      let n = 0;
      const payload =
        typeof r.payload === "string" ? r.payload : JSON.stringify(r.payload ?? reading);
      const got = evaluateRule(parseRuleSql(r.sql), {
        payload: Buffer.from(payload),
        topic,
        clientId: "store-sensor-seattle1",
        timestamp: 1700000099000,
        newuuid: () => `uuid-${++n}`,
      });
      if (r.want !== null && typeof r.want === "object" && "matched" in r.want) {
        assert.deepEqual(got, r.want);
      } else {
        assert.ok(got.matched, `expected a match, got ${JSON.stringify(got)}`);
        assert.deepEqual(got.output, r.want);
      }
    });
  }

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
  ];
  for (const [sql, message, line, column] of errors) {
    it(`rejects ${JSON.stringify(sql)} at line ${line}, column ${column}`, () => {
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

  it("parses the rule of every stack", () => {
    for (const stack of ["dev", "prod"]) parseRuleSql(loadStackConfig(stack).rule.sql);
  });

  const topics: [string, string, boolean][] = [
    ["a/+", "a/b", true],
    ["a/+", "a/b/c", false],
    ["a/#", "a", true],
    ["a/#", "a/b/c", true],
    ["#", "$aws/things/x", false],
    ["+/b", "a/b", true],
    ["a/b", "a/b/", false],
  ];
  for (const [filter, topic, want] of topics) {
    it(`topic filter ${filter} ${want ? "matches" : "does not match"} ${topic}`, () => {
      assert.equal(topicMatches(filter, topic), want);
    });
  }
});
