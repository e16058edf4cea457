// The new rule actions as the local pipeline runs them, each over the real thing where it can be:
// S3 into the local bucket (the key checked, never outside it), HTTP as a real POST to a server on
// 127.0.0.1 (only to a confirmed destination, the page's retry rules, bounded), Lambda called
// in-process with the SQL result as its event, and SNS, SQS and DynamoDBv2 recorded as exactly the
// request AWS would have received, one durable JSON line each. Failures carry the error action's
// fields as https://docs.aws.amazon.com/iot/latest/developerguide/rule-error-handling.html shows.
// Action pages: lambda-rule-action.html, s3-rule-action.html, sns-rule-action.html,
// sqs-rule-action.html, dynamodb-v2-rule-action.html, https-rule-action.html (developer guide).
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { RuleActionFailure } from "../../core/rule-actions/failure";
import { PROJECT_DIR } from "../../core/project";
import { runLocalActions, type LocalActionInput } from "../../local/rule/actions/context";
import { LocalHttpAction } from "../../local/rule/actions/http";
import { LocalLambdaAction } from "../../local/rule/actions/lambda";
import {
  LocalDynamoDbV2Action,
  LocalSnsAction,
  LocalSqsAction,
} from "../../local/rule/actions/recorded";
import { RequestLogs, requestFile } from "../../local/rule/actions/request-log";
import { LocalS3Action } from "../../local/rule/actions/s3";
import { LocalBucket } from "../../local/storage/s3";
import { tempDir } from "../helpers/temp";
import { FaultyFiles } from "./fixtures/faulty-files";
import { events as lambdaEvents } from "./fixtures/lambda-recorder";

const WHERE = { partition: "aws", region: "eu-west-1", account: "000000000000" };
const OUTPUT = { thing: "store-1", temperature: 31.5 };

function input(over: Partial<LocalActionInput> = {}): LocalActionInput {
  const output = over.output ?? OUTPUT;
  return {
    ruleName: "alerts",
    topic: "dt/store-1/weather",
    clientId: "store-1",
    output,
    record: Buffer.from(JSON.stringify(output)),
    // `${topic()}` and `${topic(2)}` as the templates page defines them; the rule engine's IoT
    // SQL evaluates them in the pipeline.
    substitute: (t) =>
      t.replaceAll("${topic()}", "dt/store-1/weather").replaceAll("${topic(2)}", "store-1"),
    ...over,
  };
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
    const dir = tempDir("sns");
    const logs = new RequestLogs(dir, "dev");
    const raw = new LocalSnsAction(
      "a",
      { kind: "sns", topicName: "ops", messageFormat: "RAW" },
      WHERE,
      logs,
    );
    const json = new LocalSnsAction(
      "b",
      { kind: "sns", topicName: "ops", messageFormat: "JSON" },
      WHERE,
      logs,
    );
    await raw.execute(input());
    await json.execute(input());
    // Durable before the append resolved: the file holds both lines now.
    assert.deepEqual(lines(requestFile(dir, "dev", "sns", "Publish")), [
      { TopicArn: "arn:aws:sns:eu-west-1:000000000000:ops", Message: JSON.stringify(OUTPUT) },
      {
        TopicArn: "arn:aws:sns:eu-west-1:000000000000:ops",
        Message: JSON.stringify(OUTPUT),
        MessageStructure: "json",
      },
    ]);
    assert.deepEqual(
      logs.counts().map((c) => c.recorded),
      [2],
    );
    await logs.close();
  });

  it("SQS: SendMessage with QueueUrl and MessageBody, base64 with useBase64 (sqs-rule-action.html)", async () => {
    const dir = tempDir("sqs");
    const logs = new RequestLogs(dir, "dev");
    const plain = new LocalSqsAction(
      "a",
      { kind: "sqs", queueName: "q", useBase64: false },
      WHERE,
      logs,
    );
    const b64 = new LocalSqsAction(
      "b",
      { kind: "sqs", queueName: "q", useBase64: true },
      WHERE,
      logs,
    );
    await Promise.all([plain.execute(input()), b64.execute(input())]);
    const got = lines(requestFile(dir, "dev", "sqs", "SendMessage")) as Array<{
      MessageBody: string;
    }>;
    const url = "https://sqs.eu-west-1.amazonaws.com/000000000000/q";
    assert.deepEqual(
      got.map((r) => r.MessageBody).sort(),
      [JSON.stringify(OUTPUT), Buffer.from(JSON.stringify(OUTPUT)).toString("base64")].sort(),
    );
    assert.ok(got.every((r) => (r as unknown as { QueueUrl: string }).QueueUrl === url));
    await logs.close();
  });

  it("SQS: 200 concurrent messages are 200 whole lines, shared writes and syncs", async () => {
    const dir = tempDir("sqs-many");
    const logs = new RequestLogs(dir, "dev");
    const a = new LocalSqsAction(
      "a",
      { kind: "sqs", queueName: "q", useBase64: false },
      WHERE,
      logs,
    );
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        a.execute(input({ output: { i }, record: Buffer.from(JSON.stringify({ i })) })),
      ),
    );
    const got = lines(requestFile(dir, "dev", "sqs", "SendMessage")) as Array<{
      MessageBody: string;
    }>;
    assert.equal(got.length, 200);
    assert.deepEqual(
      new Set(got.map((r) => (JSON.parse(r.MessageBody) as { i: number }).i)).size,
      200,
    );
    await logs.close();
  });

  it("a full disk mid-line refuses the requests (no acknowledgement) and leaves only whole lines", async () => {
    const dir = tempDir("sqs-full");
    const disk = new FaultyFiles();
    disk.space = 40;
    const logs = new RequestLogs(dir, "dev", disk);
    const a = new LocalSqsAction(
      "a",
      { kind: "sqs", queueName: "q", useBase64: false },
      WHERE,
      logs,
    );
    const results = await Promise.allSettled([a.execute(input()), a.execute(input())]);
    assert.deepEqual(
      results.map((r) => r.status),
      ["rejected", "rejected"],
    );
    assert.equal(fs.readFileSync(requestFile(dir, "dev", "sqs", "SendMessage"), "utf8"), "");
    disk.space = Infinity;
    await a.execute(input());
    assert.equal(lines(requestFile(dir, "dev", "sqs", "SendMessage")).length, 1);
    assert.deepEqual(
      logs.counts().map((c) => c.recorded),
      [1],
    );
    await logs.close();
  });

  it("DynamoDBv2: PutItem with TableName and each root-level attribute a typed column (dynamodb-v2-rule-action.html)", async () => {
    const dir = tempDir("ddb");
    const logs = new RequestLogs(dir, "dev");
    const a = new LocalDynamoDbV2Action(
      "d",
      {
        kind: "dynamoDBv2",
        tableName: "readings",
        partitionKey: { name: "thing", type: "S" },
        sortKey: { name: "ts", type: "N" },
      },
      logs,
    );
    const output = {
      thing: "store-1",
      ts: 1765130000000,
      temperature: 31.5,
      ok: true,
      tags: ["a"],
      at: { x: null },
    };
    await a.execute(input({ output, record: Buffer.from(JSON.stringify(output)) }));
    assert.deepEqual(lines(requestFile(dir, "dev", "dynamodb", "PutItem")), [
      {
        TableName: "readings",
        Item: {
          thing: { S: "store-1" },
          ts: { N: "1765130000000" },
          temperature: { N: "31.5" },
          ok: { BOOL: true },
          tags: { L: [{ S: "a" }] },
          at: { M: { x: { NULL: true } } },
        },
      },
    ]);
    await logs.close();
  });

  it("DynamoDBv2: a result without the table's partition key fails as DynamoDB's ValidationException, and nothing is recorded", async () => {
    const dir = tempDir("ddb-miss");
    const logs = new RequestLogs(dir, "dev");
    const a = new LocalDynamoDbV2Action(
      "d",
      { kind: "dynamoDBv2", tableName: "readings", partitionKey: { name: "thing", type: "S" } },
      logs,
    );
    const failures = await runLocalActions(
      [a],
      input({ output: { temperature: 1 }, record: Buffer.from('{"temperature":1}') }),
    );
    assert.equal(failures.length, 1);
    assert.equal(failures[0].failedAction, "DynamoDBv2Action");
    assert.equal(failures[0].failedResource, "readings");
    assert.match(failures[0].errorMessage, /Missing the key thing in the item/);
    assert.match(
      failures[0].errorMessage,
      /Message arrived on: dt\/store-1\/weather, Action: dynamoDBv2/,
    );
    assert.equal(fs.existsSync(requestFile(dir, "dev", "dynamodb", "PutItem")), false);
    await logs.close();
  });
});

describe("local rule actions: S3 writes to the local bucket (s3-rule-action.html)", () => {
  it("writes the SQL result under the key template, evaluated for the message", async () => {
    const dir = tempDir("s3");
    const bucket = new LocalBucket(dir, "b");
    const a = new LocalS3Action("s", { kind: "s3", key: "raw/${topic()}/1" }, bucket);
    await a.execute(input());
    assert.deepEqual(await bucket.listKeys(), ["raw/dt/store-1/weather/1"]);
    assert.equal(
      fs.readFileSync(path.join(bucket.dir, "raw/dt/store-1/weather/1"), "utf8"),
      JSON.stringify(OUTPUT),
    );
  });

  it("a key that would leave the bucket's folder fails to the error action as S3Action, and nothing is written outside", async () => {
    const dir = tempDir("s3-escape");
    const bucket = new LocalBucket(dir, "b");
    const a = new LocalS3Action("s", { kind: "s3", key: "${topic()}" }, bucket);
    const failures = await runLocalActions([a], input({ substitute: () => "../../escaped" }));
    assert.equal(failures.length, 1);
    assert.equal(failures[0].failedAction, "S3Action");
    assert.equal(failures[0].failedResource, "b");
    assert.match(
      failures[0].errorMessage,
      /^Failed to put S3 object\. The error received was .*"\.\." segment.* Action: s3, Bucket: b, Key: "\.\.\/\.\.\/escaped"/,
    );
    assert.equal(fs.existsSync(path.join(dir, "escaped")), false);
    assert.equal(fs.existsSync(path.join(dir, "s3", "escaped")), false);
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
  const action = (tryTimeoutMs?: number, confirmed = [base]) =>
    new LocalHttpAction(
      "h",
      {
        kind: "http",
        url: `${base}\${topic(2)}`,
        confirmationUrl: base,
        headers: [{ key: "x-thing", value: "${topic(2)}" }],
      },
      { confirmedDestinations: confirmed, tryTimeoutMs },
    );

  it("POSTs the SQL result to the url with its templates evaluated, content-type application/json, the headers", async () => {
    const a = action();
    await a.execute(input());
    assert.equal(got.length, 1);
    assert.equal(got[0].url, "/hook/store-1");
    assert.equal(got[0].body, JSON.stringify(OUTPUT));
    assert.equal(got[0].headers["content-type"], "application/json");
    assert.equal(got[0].headers["x-thing"], "store-1");
    assert.equal(a.stats.sent, 1);
  });

  it("a body that is not JSON goes as application/octet-stream", async () => {
    await action().execute(input({ record: Buffer.from([0xff, 0x00]) }));
    assert.equal(got[0].headers["content-type"], "application/octet-stream");
  });

  it("retries a 500 and a 429, at most three tries in all", async () => {
    answers = [{ status: 500 }, { status: 429 }, { status: 200 }];
    const a = action();
    await a.execute(input());
    assert.equal(got.length, 3);
    answers = [{ status: 503 }, { status: 503 }, { status: 503 }, { status: 200 }];
    got.length = 0;
    const failures = await runLocalActions([a], input());
    assert.equal(got.length, 3, "the fourth answer is never asked for");
    assert.equal(failures[0].failedAction, "HttpAction");
    assert.equal(failures[0].failedResource, `${base}store-1`);
    assert.match(
      failures[0].errorMessage,
      /^HttpAction failed to make a request to the specified endpoint\. The endpoint answered 503 \(3 tries\)\. Message arrived on: dt\/store-1\/weather, Action: http$/,
    );
  });

  it("does not retry a 400, nor a 500 whose answer is over 16,384 bytes", async () => {
    answers = [{ status: 400 }, { status: 200 }];
    assert.equal((await runLocalActions([action()], input())).length, 1);
    assert.equal(got.length, 1);
    got.length = 0;
    answers = [{ status: 500, body: "x".repeat(16_385) }, { status: 200 }];
    assert.equal((await runLocalActions([action()], input())).length, 1);
    assert.equal(got.length, 1);
  });

  it("a hung endpoint costs at most three bounded tries, then fails to the error action", async () => {
    answers = [
      { status: 0, hang: true },
      { status: 0, hang: true },
      { status: 0, hang: true },
    ];
    const started = Date.now();
    const failures = await runLocalActions([action(150)], input());
    assert.ok(Date.now() - started < 2_000);
    assert.equal(got.length, 3);
    assert.match(failures[0].errorMessage, /Request timeout to .* after 150 ms \(3 tries\)/);
  });

  it("sends nothing to a URL that no confirmed destination begins: the error action says so", async () => {
    const failures = await runLocalActions(
      [action(undefined, ["https://hooks.example.com/"])],
      input(),
    );
    assert.equal(got.length, 0);
    assert.match(
      failures[0].errorMessage,
      /No confirmed and enabled topic rule destination matches http:\/\/127\.0\.0\.1:\d+\/hook\/store-1/,
    );
  });
});

describe("local rule actions: Lambda calls the handler in-process with the SQL result (lambda-rule-action.html)", () => {
  const fixture = (name: string) =>
    path.relative(PROJECT_DIR, path.join(__dirname, "fixtures", name));
  const spec = (handler: string, timeoutSeconds = 3) => ({
    kind: "lambda" as const,
    handler,
    timeoutSeconds,
    memoryMiB: 128,
  });
  const ARN = "arn:aws:lambda:eu-west-1:000000000000:function:alerts-f";

  it("the event is the SQL result; the action is done once the event is accepted (asynchronous invocation)", async () => {
    lambdaEvents.length = 0;
    const a = new LocalLambdaAction("l", spec(fixture("lambda-recorder.ts")), { functionArn: ARN });
    await a.execute(input());
    await a.drain();
    assert.deepEqual(lambdaEvents, [OUTPUT]);
    assert.equal(a.stats.succeeded, 1);
  });

  it("a handler that throws is the function's error: retried twice as Lambda does, counted, not the rule's error action", async () => {
    lambdaEvents.length = 0;
    const logged: string[] = [];
    const a = new LocalLambdaAction("l", spec(fixture("lambda-recorder.ts")), {
      functionArn: ARN,
      log: (l) => logged.push(l),
    });
    const failures = await runLocalActions([a], input({ record: Buffer.from('{"fail":true}') }));
    await a.drain();
    assert.deepEqual(failures, []);
    assert.equal(lambdaEvents.length, 3);
    assert.equal(a.stats.functionErrors, 1);
    assert.match(
      logged[0],
      /the function failed on a message from dt\/store-1\/weather \(attempt 1 of 3\): the handler was asked to fail/,
    );
  });

  it("a handler that cannot be invoked (no handler export) fails the action to the error action as LambdaAction", async () => {
    const a = new LocalLambdaAction("l", spec(fixture("lambda-no-handler.ts")), {
      functionArn: ARN,
    });
    const failures = await runLocalActions([a], input());
    assert.equal(failures.length, 1);
    assert.equal(failures[0].failedAction, "LambdaAction");
    assert.equal(failures[0].failedResource, ARN);
    assert.match(failures[0].errorMessage, /exports no handler function/);
  });

  it("functions/log-event.ts, the shipped handler, runs locally as bundled in the cloud", async () => {
    const a = new LocalLambdaAction("l", spec("functions/log-event.ts"), { functionArn: ARN });
    const log = console.log;
    const printed: string[] = [];
    console.log = (s: string) => printed.push(s);
    try {
      await a.execute(input());
      await a.drain();
    } finally {
      console.log = log;
    }
    assert.deepEqual(printed, [JSON.stringify({ received: OUTPUT })]);
  });
});

describe("local rule actions: one error action message per rule and message (rule-error-handling.html)", () => {
  it("two failing actions give two entries of one failures list; a disk error rejects instead", async () => {
    const dir = tempDir("two");
    const logs = new RequestLogs(dir, "dev");
    const ddb = new LocalDynamoDbV2Action(
      "d",
      { kind: "dynamoDBv2", tableName: "t1", partitionKey: { name: "id", type: "S" } },
      logs,
    );
    const s3 = new LocalS3Action("s", { kind: "s3", key: "${topic()}" }, new LocalBucket(dir, "b"));
    const failures = await runLocalActions([ddb, s3], input({ substitute: () => "/abs" }));
    assert.deepEqual(failures.map((f) => f.failedAction).sort(), ["DynamoDBv2Action", "S3Action"]);
    const broken = {
      id: "x",
      execute: () => Promise.reject(Object.assign(new Error("no space"), { code: "ENOSPC" })),
    };
    await assert.rejects(runLocalActions([broken], input()), /no space/);
    assert.ok(new RuleActionFailure("A", "r", "m").entry().failedAction === "A");
    await logs.close();
  });
});
