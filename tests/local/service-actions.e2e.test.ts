// The new rule actions over the real local pipeline: a device publishes through the mutual-TLS
// broker, the stack's further rule runs, and by the time the PUBACK arrives the S3 object is in the
// local bucket, the SNS, SQS and DynamoDBv2 requests are on disk (one JSON line each), the HTTP
// endpoint on 127.0.0.1 has its POST, and the Lambda handler has run in-process; the run's summary
// counts the recorded requests. Pages: https://docs.aws.amazon.com/iot/latest/developerguide/
// (s3-, sns-, sqs-, dynamodb-v2-, https-, lambda-)rule-action.html.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import mqtt from "mqtt";
import { parseStackConfig, readRawStackConfig } from "../../core/stack-config";
import { telemetryTopicFor } from "../../core/topics";
import { LOCAL_ACCOUNT_ID } from "../../local/broker/authorizer";
import { startLocalPipeline } from "../../local/pipeline/pipeline";
import { requestFile } from "../../local/rule/actions/request-log";
import { LocalBucket, localBucketName } from "../../local/storage/s3";
import { tempDir } from "../helpers/temp";
import { until } from "../helpers/wait";

describe("rule actions end to end over the local pipeline (broker, rules, state folder)", function () {
  this.timeout(60_000);

  it("every action of a further rule takes a device's acknowledged publish, and the summary counts the recorded requests", async () => {
    const posts: string[] = [];
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        posts.push(`${req.url ?? ""} ${Buffer.concat(chunks).toString()}`);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const hook = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook/`;
    const stateDir = tempDir("actions-e2e");
    const config = parseStackConfig(
      {
        ...readRawStackConfig("dev"),
        rules: [
          {
            name: "copies",
            sql: "SELECT topic(2) AS thing, temperature FROM 'SeattleStoreTemp/+' WHERE temperature > 30",
            actions: [
              { s3: { key: "raw/${topic(2)}/${timestamp()}" } },
              { sns: { topicName: "ops-alerts" } },
              { sqs: { queueName: "readings" } },
              { dynamoDBv2: { tableName: "readings", partitionKey: { name: "thing" } } },
              { http: { url: `${hook}\${topic(2)}`, confirmationUrl: hook, confirmed: true } },
              { lambda: { handler: "functions/log-event.ts" } },
            ],
          },
        ],
      },
      "dev",
    );
    const printed: string[] = [];
    let segment = "";
    const log = console.log;
    const p = await startLocalPipeline(config, { stateDir });
    try {
      const thing = config.things[0].name;
      const client = await mqtt.connectAsync(p.url, {
        ...p.credentialsFor(thing),
        clientId: thing,
        rejectUnauthorized: true,
        reconnectPeriod: 0,
      });
      client.on("error", () => undefined);
      const topic = telemetryTopicFor(config.telemetryTopic, thing);
      console.log = (s: string) => printed.push(s);
      await client.publishAsync(topic, JSON.stringify({ temperature: 31 }), { qos: 1 });
      // A reading the WHERE filters out: no action runs.
      await client.publishAsync(topic, JSON.stringify({ temperature: 3 }), { qos: 1 });
      await client.endAsync();
      segment = topic.split("/")[1];
      const item = { thing: segment, temperature: 31 };
      // Only the telemetry rule holds the PUBACK (no rule does in AWS IoT); a further rule's
      // actions run beside it, each request written whole and synced when its run ends.
      const bucket = new LocalBucket(stateDir, localBucketName(config));
      const s3Written = async () =>
        (await bucket.listKeys()).some((k) => k.startsWith(`raw/${segment}/`));
      await until(
        () =>
          ["sqs.SendMessage", "sns.Publish", "dynamodb.PutItem"].every((f) => {
            const [service, api] = f.split(".");
            return fs.existsSync(requestFile(stateDir, "dev", service, api));
          }) && posts.length >= 1,
        "the further rule's actions",
      );
      for (let i = 0; i < 100 && !(await s3Written()); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.deepEqual(
        JSON.parse(fs.readFileSync(requestFile(stateDir, "dev", "sqs", "SendMessage"), "utf8")),
        {
          QueueUrl: `https://sqs.us-east-1.amazonaws.com/${LOCAL_ACCOUNT_ID}/readings`,
          MessageBody: JSON.stringify(item),
        },
      );
      assert.equal(
        fs.readFileSync(requestFile(stateDir, "dev", "sns", "Publish"), "utf8").split("\n").length,
        2,
      );
      assert.deepEqual(
        JSON.parse(fs.readFileSync(requestFile(stateDir, "dev", "dynamodb", "PutItem"), "utf8")),
        { TableName: "readings", Item: { thing: { S: segment }, temperature: { N: "31" } } },
      );
      const keys = await bucket.listKeys();
      assert.equal(keys.filter((k) => k.startsWith(`raw/${segment}/`)).length, 1);
      assert.deepEqual(posts, [`/hook/${segment} ${JSON.stringify(item)}`]);
    } finally {
      // The stop waits for the Lambda function invoked for the acknowledged message.
      await p.stop().finally(() => {
        console.log = log;
      });
      server.close();
    }
    assert.equal(printed.filter((l) => l.startsWith('{"received"')).length, 1, printed.join("\n"));
    const summary = p.summary();
    const rule = summary.find((r) => r.label === "matched by rule copies");
    assert.equal(rule?.value, "1 of 2 on its topic");
    const recorded = summary.find((r) => r.label.startsWith("requests recorded for AWS"));
    assert.ok(recorded, summary.map((r) => r.label).join("\n"));
    assert.match(String(recorded.value), /^3 \(1 \/ 1 \/ 1\) in /);
    const lambda = summary.find((r) => r.label.startsWith("Lambda functions invoked"));
    assert.equal(lambda?.value, "1 (1 / 0)");
    const posted = summary.find((r) => r.label.startsWith("HTTP requests answered 2xx"));
    assert.equal(posted?.value, "1 / 0 / 0");
  });
});
