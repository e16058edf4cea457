// `npm run subscribe`: the counterpart of the AWS console's MQTT test client; prints every message
// that arrives on a topic filter, from the running embedded pipeline or an endpoint.
import * as path from "node:path";
import mqtt from "mqtt";
import { loadPlan } from "../core/plan";
import { telemetryTopicFilter } from "../core/topics";
import { readRunFile, fileCredentials, type DeviceCredentials } from "./targets";
import type { Output, SubscribeOptions } from "./options";

/** Subscribes and prints `topic payload` per message; resolves with the exit code. */
export async function subscribe(
  opts: SubscribeOptions,
  out: Output,
  signal?: AbortSignal,
): Promise<number> {
  const config = loadPlan(opts.stack).config;
  const filter = opts.topic ?? telemetryTopicFilter(config.telemetryTopic);
  let url: string;
  let creds: DeviceCredentials;
  let clientId: string;
  if (opts.endpoint) {
    const e = opts.endpoint;
    url = `mqtts://${e.host}:${e.port}`;
    creds = fileCredentials([e.clientId], e.cert, e.key, e.ca).get(e.clientId) as DeviceCredentials;
    clientId = e.clientId;
  } else {
    const run = readRunFile(opts.stateDir, config.stack);
    // The local CA only for the embedded pipeline: an --endpoint run brings its own files.
    const { CONSOLE_IDENTITY, readCredentials } = await import("../local/identity/ca");
    url = run.url;
    creds = readCredentials(path.join(run.stateDir, "pki"), CONSOLE_IDENTITY);
    clientId = CONSOLE_IDENTITY;
  }
  const client = mqtt.connect(url, {
    clientId,
    key: creds.key,
    cert: creds.cert,
    ca: creds.ca,
    rejectUnauthorized: true,
    protocolVersion: opts.protocol,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
  });
  let received = 0;
  return new Promise<number>((resolve) => {
    let done = false;
    const finish = (code: number, line?: string) => {
      if (done) return;
      done = true;
      if (line) out.line(line);
      signal?.removeEventListener("abort", onAbort);
      client.end(true, {}, () => resolve(code));
    };
    const onAbort = () => finish(0, `${received} message(s) received`);
    signal?.addEventListener("abort", onAbort);
    client.on("error", (err) => finish(1, `subscribe: ${err.message.split("\n")[0]}`));
    client.on("close", () => {
      if (!done) finish(1, `subscribe: the broker at ${url} closed the connection`);
    });
    client.on("message", (topic, payload) => {
      received++;
      out.line(`${topic}  ${payload.toString("utf8")}`);
      if (opts.count !== undefined && received >= opts.count) finish(0);
    });
    client.on("connect", () => {
      client.subscribe(filter, { qos: opts.qos }, (err, granted) => {
        if (err || granted?.some((g) => g.qos === 128)) {
          finish(1, `subscribe: the broker refused the subscription to ${filter}`);
          return;
        }
        out.line(`subscribed to ${filter} on ${url} as ${clientId}; Ctrl-C to stop`);
      });
    });
  });
}
