// The new rule actions as the local rule engine runs them, from a stack config's `rules`, each
// over the real thing where it can be: S3 into the local bucket (the key checked, never outside
// it), HTTP as a real POST to a server on 127.0.0.1 (only to a confirmed destination, the page's
// retry rules, bounded), Lambda called in-process with the SQL result as its event, and SNS, SQS
// and DynamoDBv2 recorded as exactly the request AWS would have received, one durable JSON line
// each. Templates are filled in by the IoT SQL engine; failures reach the rule's error action in
// the shape https://docs.aws.amazon.com/iot/latest/developerguide/rule-error-handling.html shows.
// Action pages (AWS IoT developer guide): lambda-rule-action.html, s3-rule-action.html,
// sns-rule-action.html, sqs-rule-action.html, dynamodb-v2-rule-action.html, https-rule-action.html.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { parseStackConfig, readRawStackConfig } from "../../core/stack-config";
import { LOCAL_ACCOUNT_ID } from "../../local/broker/authorizer";
import { logGroupFile } from "../../local/rule/actions/cloudwatch-logs";
import { LocalHttpAction } from "../../local/rule/actions/http";
import { LocalLambdaAction } from "../../local/rule/actions/lambda";
import { RequestLog, requestFile } from "../../local/rule/actions/request-log";
import { LocalRuleEngine, type RuleErrorMessage } from "../../local/rule/rule-engine";
import { LocalBucket, localBucketName } from "../../local/storage/s3";
import { tempDir } from "../helpers/temp";
import { FaultyFiles } from "./fixtures/faulty-files";
import { events as lambdaEvents } from "./fixtures/lambda-recorder";

const RULE = "copies";
const TOPIC = "SeattleStoreTemp/store-1";
const READING = { temperature: 31.5, humidity: 40 };
const SQL = "SELECT topic(2) AS thing, temperature FROM 'SeattleStoreTemp/+'";
const OUTPUT = { thing: "store-1", temperature: 31.5 };

/** The dev stack with one further rule holding `actions`, run by the engine on a state folder. */
function engine(actions: unknown[], sql = SQL, errorAction?: unknown) {
  const stateDir = tempDir("actions");
  const config = parseStackConfig(
    {
      ...readRawStackConfig("dev"),
      rules: [{ name: RULE, sql, actions, ...(errorAction === undefined ? {} : { errorAction }) }],
    },
    "dev",
  );
  const logged: string[] = [];
  const e = new LocalRuleEngine(config, {
    firehosePut: async () => undefined,
    errorAction: async () => undefined,
    log: (l) => logged.push(l),
    services: { stateDir },
  });
  // The further rules run beside the PUBACK (FURTHER_RULES_IN_FLIGHT_MAX): the publish is done
  // once the telemetry rule has it; drain() waits for the further rules' runs.
  const publish = async (payload: unknown = READING, topic = TOPIC) => {
    await e.onPublish("store-1", topic, Buffer.from(JSON.stringify(payload)));
    await e.drain();
  };
  /** The error action messages (the rule's default error action: its own log group). */
  const errors = (): RuleErrorMessage[] => {
    const file = logGroupFile(stateDir, `/iot/rules/${RULE}/errors`);
    if (!fs.existsSync(file)) return [];
    return fs
      .readFileSync(file, "utf8")
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as RuleErrorMessage);
  };
  const stats = () => e.ruleStats()[RULE];
  return { e, stateDir, config, logged, publish, errors, stats };
}

function lines(file: string): unknown[] {
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as unknown);
}

describe("local rule actions: SNS, SQS and DynamoDBv2 record the request AWS would have received", () => {
  it("SNS: Publish with TopicArn, Message and, for messageFormat JSON, MessageStructure json (sns-rule-action.html)", async () => {
    const t = engine([
      { sns: { topicName: "ops" } },
      { sns: { topicName: "ops", messageFormat: "JSON" } },
    ]);
    await t.publish();
    // Durable before the publish was acknowledged: the file holds both lines now.
    const arn = `arn:aws:sns:us-east-1:${LOCAL_ACCOUNT_ID}:ops`;
    const got = lines(requestFile(t.stateDir, "dev", "sns", "Publish"));
    assert.deepEqual(
      got.sort((a, b) => JSON.stringify(a).length - JSON.stringify(b).length),
      [
        { TopicArn: arn, Message: JSON.stringify(OUTPUT) },
        { TopicArn: arn, Message: JSON.stringify(OUTPUT), MessageStructure: "json" },
      ],
    );
    assert.deepEqual(
      t.e.requests?.counts().map((c) => [c.api, c.recorded]),
      [["sns.Publish", 2]],
    );
  });

  it("SQS: SendMessage with QueueUrl and MessageBody, base64 with useBase64 (sqs-rule-action.html)", async () => {
    const t = engine([{ sqs: { queueName: "q" } }, { sqs: { queueName: "q", useBase64: true } }]);
    await t.publish();
    const got = lines(requestFile(t.stateDir, "dev", "sqs", "SendMessage")) as Array<{
      QueueUrl: string;
      MessageBody: string;
    }>;
    assert.deepEqual(
      got.map((r) => r.MessageBody).sort(),
      [JSON.stringify(OUTPUT), Buffer.from(JSON.stringify(OUTPUT)).toString("base64")].sort(),
    );
    for (const r of got) {
      assert.equal(r.QueueUrl, `https://sqs.us-east-1.amazonaws.com/${LOCAL_ACCOUNT_ID}/q`);
    }
  });

  it("SQS: 200 concurrent messages are 200 whole lines, sharing writes and syncs", async () => {
    const t = engine([{ sqs: { queueName: "q" } }]);
    await Promise.all(Array.from({ length: 200 }, (_, i) => t.publish({ temperature: i })));
    const got = lines(requestFile(t.stateDir, "dev", "sqs", "SendMessage")) as Array<{
      MessageBody: string;
    }>;
    assert.equal(got.length, 200);
    const temps = got.map(
      (r) => (JSON.parse(r.MessageBody) as { temperature: number }).temperature,
    );
    assert.equal(new Set(temps).size, 200);
  });

  it("a full disk mid-line refuses the requests (no acknowledgement) and leaves only whole lines", async () => {
    const dir = tempDir("sqs-full");
    const disk = new FaultyFiles();
    disk.space = 40;
    const log = new RequestLog(path.join(dir, "sqs.SendMessage.jsonl"), disk);
    // The first line (39 bytes) fits; the second is cut after 1 byte by the full disk.
    const results = await Promise.allSettled([
      log.append({ a: "x".repeat(30) }),
      log.append({ b: 1 }),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ["fulfilled", "rejected"],
    );
    assert.equal(fs.readFileSync(log.path, "utf8"), `${JSON.stringify({ a: "x".repeat(30) })}\n`);
    disk.space = Infinity;
    await log.append({ c: 1 });
    assert.deepEqual(lines(log.path), [{ a: "x".repeat(30) }, { c: 1 }]);
    assert.equal(log.recorded, 2);
  });

  it("DynamoDBv2: PutItem with TableName and each root-level attribute a typed column (dynamodb-v2-rule-action.html)", async () => {
    const t = engine(
      [
        {
          dynamoDBv2: {
            tableName: "readings",
            partitionKey: { name: "thing", type: "S" },
            sortKey: { name: "ts", type: "N" },
          },
        },
      ],
      "SELECT topic(2) AS thing, 1765130000000 AS ts, temperature, true AS ok, [1] AS tags, {'x': null} AS at FROM 'SeattleStoreTemp/+'",
    );
    await t.publish();
    assert.deepEqual(lines(requestFile(t.stateDir, "dev", "dynamodb", "PutItem")), [
      {
        TableName: "readings",
        Item: {
          thing: { S: "store-1" },
          ts: { N: "1765130000000" },
          temperature: { N: "31.5" },
          ok: { BOOL: true },
          tags: { L: [{ N: "1" }] },
          at: { M: { x: { NULL: true } } },
        },
      },
    ]);
  });

  it("DynamoDBv2: a result without the table's partition key fails as DynamoDB's ValidationException to the error action, nothing recorded", async () => {
    const t = engine([
      { dynamoDBv2: { tableName: "readings", partitionKey: { name: "id", type: "S" } } },
    ]);
    await t.publish();
    const [err] = t.errors();
    assert.equal(err.ruleName, RULE);
    assert.equal(err.topic, TOPIC);
    assert.equal(err.clientId, "store-1");
    assert.equal(
      err.base64OriginalPayload,
      Buffer.from(JSON.stringify(READING)).toString("base64"),
    );
    assert.equal(err.failures.length, 1);
    assert.equal(err.failures[0].failedAction, "DynamoDBv2Action");
    assert.equal(err.failures[0].failedResource, "readings");
    assert.match(
      err.failures[0].errorMessage,
      /Missing the key id in the item .*Message arrived on: SeattleStoreTemp\/store-1, Action: dynamoDBv2$/,
    );
    assert.equal(fs.existsSync(requestFile(t.stateDir, "dev", "dynamodb", "PutItem")), false);
    assert.equal(t.stats().actionFailures, 1);
  });
});

describe("local rule actions: S3 writes to the local bucket (s3-rule-action.html)", () => {
  it("writes the SQL result under the key template, filled in by the IoT SQL engine", async () => {
    const t = engine([{ s3: { key: "raw/${topic()}/${temperature}" } }]);
    await t.publish();
    const bucket = new LocalBucket(t.stateDir, localBucketName(t.config));
    assert.deepEqual(await bucket.listKeys(), ["raw/SeattleStoreTemp/store-1/31.5"]);
    assert.equal(
      fs.readFileSync(path.join(bucket.dir, "raw/SeattleStoreTemp/store-1/31.5"), "utf8"),
      JSON.stringify(OUTPUT),
    );
  });

  it("a key that would leave the bucket's folder fails to the error action as S3Action; nothing is written outside", async () => {
    const t = engine([{ s3: { key: "${k}" } }]);
    await t.publish({ ...READING, k: "../../escaped" });
    const [err] = t.errors();
    assert.equal(err.failures[0].failedAction, "S3Action");
    assert.equal(err.failures[0].failedResource, localBucketName(t.config));
    assert.match(
      err.failures[0].errorMessage,
      /^Failed to put S3 object\. The error received was .*"\.\." segment.* Key: "\.\.\/\.\.\/escaped"\. Message arrived on: SeattleStoreTemp\/store-1, Action: s3$/,
    );
    assert.equal(fs.existsSync(path.join(t.stateDir, "escaped")), false);
    assert.equal(fs.existsSync(path.join(t.stateDir, "s3", "escaped")), false);
  });
});

describe("local rule actions as the error action (rule-error-handling.html's own example)", () => {
  it("an S3 error action writes the error message under the page's key template", async () => {
    const t = engine(
      [{ dynamoDBv2: { tableName: "readings", partitionKey: { name: "id", type: "S" } } }],
      SQL,
      // The page's example: "key" : "${replace(topic(), '/', '-') + '-' + timestamp() + '-' + newuuid()}"
      { s3: { key: "errors/${replace(topic(), '/', '-') + '-' + timestamp() + '-' + newuuid()}" } },
    );
    await t.publish();
    const bucket = new LocalBucket(t.stateDir, localBucketName(t.config));
    const keys = await bucket.listKeys();
    assert.equal(keys.length, 1);
    assert.match(keys[0], /^errors\/SeattleStoreTemp-store-1-\d{13}-[0-9a-f-]{36}$/);
    const message = JSON.parse(
      fs.readFileSync(path.join(bucket.dir, keys[0]), "utf8"),
    ) as RuleErrorMessage;
    assert.equal(message.ruleName, RULE);
    assert.equal(message.failures[0].failedAction, "DynamoDBv2Action");
  });
});

describe("local rule actions: HTTP is a real POST to a confirmed destination on 127.0.0.1 (https-rule-action.html)", () => {
  let server: http.Server;
  let base = "";
  const got: Array<{ url: string; headers: http.IncomingHttpHeaders; body: string }> = [];
  let answers: Array<{ status: number; body?: string; hang?: boolean }> = [];
  before(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        got.push({
          url: req.url ?? "",
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
        });
        const a = answers.shift() ?? { status: 200 };
        if (a.hang === true) return;
        res.writeHead(a.status).end(a.body ?? "");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook/`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  beforeEach(() => {
    got.length = 0;
    answers = [];
  });
  const http1 = (over: Record<string, unknown> = {}) =>
    engine([
      {
        http: {
          url: `${base}\${topic(2)}`,
          confirmationUrl: base,
          headers: [{ key: "x-thing", value: "${topic(2)}" }],
          confirmed: true,
          ...over,
        },
      },
    ]);

  it("POSTs the SQL result to the url with its templates filled in, content-type application/json, the headers", async () => {
    const t = http1();
    await t.publish();
    assert.equal(got.length, 1);
    assert.equal(got[0].url, "/hook/store-1");
    assert.equal(got[0].body, JSON.stringify(OUTPUT));
    assert.equal(got[0].headers["content-type"], "application/json");
    assert.equal(got[0].headers["x-thing"], "store-1");
    assert.deepEqual(t.errors(), []);
  });

  it("a result that is not JSON goes as application/octet-stream", async () => {
    const t = engine(
      [{ http: { url: base, confirmed: true } }],
      "SELECT * FROM 'SeattleStoreTemp/+'",
    );
    await t.e.onPublish("store-1", TOPIC, Buffer.from([0xff, 0x00]));
    await t.e.drain();
    assert.equal(got[0].headers["content-type"], "application/octet-stream");
  });

  it("retries a 500 and a 429, at most three tries in all, then fails to the error action", async () => {
    answers = [{ status: 500 }, { status: 429 }, { status: 200 }];
    const t = http1();
    await t.publish();
    assert.equal(got.length, 3);
    assert.deepEqual(t.errors(), []);
    answers = [{ status: 503 }, { status: 503 }, { status: 503 }, { status: 200 }];
    got.length = 0;
    await t.publish();
    assert.equal(got.length, 3, "the fourth answer is never asked for");
    const [err] = t.errors();
    assert.equal(err.failures[0].failedAction, "HttpAction");
    assert.equal(err.failures[0].failedResource, `${base}store-1`);
    assert.equal(
      err.failures[0].errorMessage,
      "HttpAction failed to make a request to the specified endpoint. The endpoint answered 503 (3 tries). Message arrived on: SeattleStoreTemp/store-1, Action: http",
    );
  });

  it("does not retry a 400, nor a 500 whose answer is over 16,384 bytes", async () => {
    answers = [{ status: 400 }, { status: 200 }];
    const t = http1();
    await t.publish();
    assert.equal(got.length, 1);
    got.length = 0;
    answers = [{ status: 500, body: "x".repeat(16_385) }, { status: 200 }];
    await t.publish();
    assert.equal(got.length, 1);
    assert.equal(t.errors().length, 2);
  });

  it("a hung endpoint costs at most three bounded tries, then the action fails", async () => {
    answers = [
      { status: 0, hang: true },
      { status: 0, hang: true },
      { status: 0, hang: true },
    ];
    const a = new LocalHttpAction(
      { url: `${base}x`, confirmationUrl: base, headers: [], confirmed: true },
      { tryTimeoutMs: 150 },
    );
    const b = Buffer.from("{}");
    const started = Date.now();
    await assert.rejects(
      a.run({
        ruleName: RULE,
        topic: TOPIC,
        payload: b,
        record: b,
        output: {},
        receivedAt: 0,
        traceId: "t",
        hops: 0,
        input: { payload: b, topic: TOPIC, timestamp: 0, newuuid: () => "u" },
      }),
      /Request timeout to http:\/\/127\.0\.0\.1:\d+\/hook\/x after 150 ms \(3 tries\)/,
    );
    assert.ok(Date.now() - started < 2_000, "three tries of 150 ms");
    assert.equal(got.length, 3);
    assert.equal(a.stats.failed, 1);
  });

  it("sends nothing while the destination is not confirmed: the error action says so", async () => {
    const t = http1({ confirmed: false });
    await t.publish();
    assert.equal(got.length, 0);
    assert.match(
      t.errors()[0].failures[0].errorMessage,
      /The topic rule destination http:\/\/127\.0\.0\.1:\d+\/hook\/ is not confirmed and enabled \(confirmed: false\); nothing was sent/,
    );
  });
});

describe("local rule actions: Lambda calls the handler in-process with the SQL result (lambda-rule-action.html)", () => {
  it("functions/log-event.ts, the shipped handler, gets the SQL result as its event; the message is acknowledged without waiting (asynchronous invocation)", async () => {
    const t = engine([{ lambda: { handler: "functions/log-event.ts" } }]);
    const log = console.log;
    const printed: string[] = [];
    console.log = (s: string) => printed.push(s);
    try {
      await t.publish();
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      console.log = log;
    }
    assert.deepEqual(printed, [JSON.stringify({ received: OUTPUT })]);
    assert.deepEqual(t.errors(), []);
  });
});

describe("local rule actions: the Lambda executor on handlers of its own (tests/local/fixtures)", () => {
  // The executor itself, with handler files outside functions/ (the config accepts only those).
  const ARN = "arn:aws:lambda:us-east-1:000000000000:function:copies-f";
  const message = (record: unknown) => {
    const b = Buffer.from(JSON.stringify(record));
    return {
      ruleName: RULE,
      topic: TOPIC,
      clientId: "store-1",
      payload: b,
      record: b,
      output: undefined,
      receivedAt: 0,
      traceId: "t",
      hops: 0,
      input: { payload: b, topic: TOPIC, timestamp: 0, newuuid: () => "u" },
    };
  };
  const params = (handler: string) => ({
    handler: path.relative(
      path.resolve(__dirname, "../.."),
      path.join(__dirname, "fixtures", handler),
    ),
    timeoutSeconds: 3,
    memoryMiB: 128,
  });

  it("a handler that throws is the function's error: retried twice as Lambda retries asynchronous invocations, counted, not sent to the rule's error action", async () => {
    lambdaEvents.length = 0;
    const logged: string[] = [];
    const a = new LocalLambdaAction(params("lambda-recorder.ts"), {
      functionArn: ARN,
      log: (l) => logged.push(l),
    });
    await a.run(message({ fail: true }));
    await a.drain();
    assert.equal(lambdaEvents.length, 3);
    assert.equal(a.stats.functionErrors, 1);
    assert.match(
      logged[0],
      /the function failed on a message from SeattleStoreTemp\/store-1 \(attempt 1 of 3\): the handler was asked to fail/,
    );
  });

  it("a handler that cannot be invoked (no handler export) fails the action, which the rule reports as LambdaAction", async () => {
    const a = new LocalLambdaAction(params("lambda-no-handler.ts"), { functionArn: ARN });
    await assert.rejects(a.run(message({})), (e: Error & { resource?: string }) => {
      assert.match(e.message, /exports no handler function/);
      assert.equal(e.resource, ARN);
      return true;
    });
  });
});
