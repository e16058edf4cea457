// The new actions' parameters as the stack config gives them (`rules[].actions`), checked when
// the config is loaded: each mistake one line naming the key and what to do. Pages (AWS IoT
// developer guide): lambda-rule-action.html, s3-rule-action.html, sns-rule-action.html,
// sqs-rule-action.html, dynamodb-v2-rule-action.html, https-rule-action.html.
import { strict as assert } from "node:assert";
import { deployProblems } from "../../core/deploy-readiness";
import { ConfigError } from "../../core/errors";
import { parseStackConfig, readRawStackConfig } from "../../core/stack-config";
import { s3KeyGrant } from "../../core/topic-rules/actions/s3";

const load = (action: unknown) =>
  parseStackConfig(
    {
      ...readRawStackConfig("dev"),
      rules: [{ name: "copies", sql: "SELECT * FROM 'a/+'", actions: [action] }],
    },
    "dev",
  );

function refused(action: unknown, message: RegExp) {
  assert.throws(
    () => load(action),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.doesNotMatch(e.message, /\n/);
      assert.match(e.message, message);
      return true;
    },
  );
}

describe("rule action parameters, checked at config load (core/topic-rules/actions/)", () => {
  it("accepts each new kind with its defaults", () => {
    const kinds = [
      { lambda: { handler: "functions/log-event.ts" } },
      { s3: { key: "raw/${topic()}/${timestamp()}" } },
      { sns: { topicName: "ops" } },
      { sqs: { queueName: "q" } },
      { dynamoDBv2: { tableName: "readings", partitionKey: { name: "thing" } } },
      { http: { url: "https://hooks.example.com/iot" } },
    ];
    const parsed = kinds.map((k) => load(k).rules[0].actions[0]);
    assert.deepEqual(parsed, [
      {
        kind: "lambda",
        params: { handler: "functions/log-event.ts", timeoutSeconds: 3, memoryMiB: 128 },
      },
      { kind: "s3", params: { key: "raw/${topic()}/${timestamp()}" } },
      { kind: "sns", params: { topicName: "ops", messageFormat: "RAW" } },
      { kind: "sqs", params: { queueName: "q", useBase64: false } },
      {
        kind: "dynamoDBv2",
        params: { tableName: "readings", partitionKey: { name: "thing", type: "S" } },
      },
      {
        kind: "http",
        // "If url is hardcoded and confirmationUrl is not provided, we implicitly treat the url
        // field as the confirmationUrl."
        params: {
          url: "https://hooks.example.com/iot",
          confirmationUrl: "https://hooks.example.com/iot",
          headers: [],
          confirmed: false,
        },
      },
    ]);
  });

  it("S3: a canned ACL is refused, and so is a bucket of its own", () => {
    refused(
      { s3: { key: "k", cannedAcl: "public-read" } },
      /rules\[0\]\.actions\[0\]\.s3\.cannedAcl = "public-read" is invalid: a canned ACL is refused/,
    );
    refused(
      { s3: { key: "k", bucketName: "b" } },
      /s3\.bucketName = "b" is invalid: the S3 action writes to the stack's own bucket/,
    );
    refused({ s3: { key: "${topic(" } }, /s3\.key .* is invalid: .*substitution templates/);
  });

  it("S3: the role's grant follows the key's literal folder (the text before the first template)", () => {
    assert.equal(s3KeyGrant("raw/${topic()}/${timestamp()}"), "raw/*");
    assert.equal(s3KeyGrant("raw/dev-${topic()}"), "raw/*");
    assert.equal(s3KeyGrant("${topic()}"), "*");
    assert.equal(s3KeyGrant("fixed/key.json"), "fixed/key.json");
  });

  it("SNS and SQS: a name, not a template (the role grants on that one resource); FIFO is not supported", () => {
    refused(
      { sns: { topicName: "${topic()}" } },
      /sns\.topicName .* is invalid: set the topic's name/,
    );
    refused(
      { sns: { topicName: "ops", messageFormat: "XML" } },
      /sns\.messageFormat = "XML" is invalid: use one of RAW, JSON/,
    );
    refused(
      { sqs: { queueName: "q.fifo" } },
      /sqs\.queueName = "q\.fifo" is invalid: .*FIFO queues are not supported/,
    );
    refused(
      { sqs: { queueName: "q", useBase64: "yes" } },
      /sqs\.useBase64 = "yes" is invalid: set true or false/,
    );
  });

  it("DynamoDBv2: the table's keys are required and typed S, N or B", () => {
    refused(
      { dynamoDBv2: { tableName: "readings" } },
      /dynamoDBv2\.partitionKey = null is invalid: set \{name, type\}/,
    );
    refused(
      { dynamoDBv2: { tableName: "readings", partitionKey: { name: "id", type: "X" } } },
      /partitionKey\.type = "X" is invalid: use one of S, N, B/,
    );
    refused(
      { dynamoDBv2: { tableName: "${topic()}", partitionKey: { name: "id" } } },
      /dynamoDBv2\.tableName .* is invalid: set the table's name/,
    );
  });

  it("HTTP: a templated url needs a literal confirmationUrl it begins with; header keys are not templates", () => {
    refused(
      { http: { url: "https://h.example.com/${topic()}" } },
      /holds a substitution template, so confirmationUrl is required/,
    );
    refused(
      { http: { url: "https://h.example.com/x", confirmationUrl: "https://other.example.com/" } },
      /does not begin with confirmationUrl/,
    );
    refused({ http: { url: "http://h.example.com/x" } }, /is not an https:\/\/ URL/);
    refused({ http: { url: "https://[::1]/x" } }, /IPv6 address/);
    refused(
      { http: { url: "https://h.example.com/x", headers: [{ key: "${k}", value: "v" }] } },
      /headers\[0\]\.key .* is invalid: set a header name/,
    );
    refused(
      { http: { url: "https://h.example.com/x", confirmed: "yes" } },
      /http\.confirmed = "yes" is invalid/,
    );
  });

  it("Lambda: a handler file under functions/ that exists, a timeout and memory within Lambda's bounds", () => {
    refused(
      { lambda: { handler: "lib/x.js" } },
      /lambda\.handler = "lib\/x\.js" is invalid: give the handler's file, functions\/<name>\.ts/,
    );
    refused(
      { lambda: { handler: "functions/missing.ts" } },
      /there is no functions\/missing\.ts in the project/,
    );
    refused(
      { lambda: { handler: "functions/log-event.ts", timeoutSeconds: 901 } },
      /timeoutSeconds = 901 is invalid: set a whole number from 1 to 900/,
    );
  });

  it("HTTP: pulumi up refuses an action whose destination is not confirmed, or a local http:// one, in one line (https-rule-action.html)", () => {
    const problems = (http: Record<string, unknown>) => deployProblems(load({ http }));
    assert.deepEqual(problems({ url: "https://h.example.com/x", confirmed: true }), []);
    const [unconfirmed] = problems({ url: "https://h.example.com/x" });
    assert.match(
      unconfirmed,
      /^stack dev: rule copies: the HTTP action's destination https:\/\/h\.example\.com\/x is not confirmed; create it \(aws iot create-topic-rule-destination .*\), confirm it .* then set confirmed: true on the action$/,
    );
    const [local] = problems({ url: "http://127.0.0.1:8080/x", confirmed: true });
    assert.match(local, /is a local http:\/\/ endpoint, which only the local pipeline posts to/);
  });
});
