// A bare mqtt.js client over mutual TLS that publishes prepared payloads with a fixed window of
// unacknowledged messages: the baseline of figure 1 and the load generator of figure 3.
import mqtt, { type MqttClient } from "mqtt";
import type { Credentials } from "../local/identity/ca";
import { nowMs } from "./stats";

export interface BareConnection {
  readonly client: MqttClient;
  /** Milliseconds from starting the TLS handshake to CONNACK. */
  readonly connectMs: number;
}

/** Connects one client with its own certificate; the client id is the thing name, as AWS needs. */
export async function connectBare(
  url: string,
  clientId: string,
  creds: Credentials,
  /** MQTT version: 4 (3.1.1) or 5. */
  protocol: 4 | 5 = 4,
): Promise<BareConnection> {
  const started = nowMs();
  const client = await mqtt.connectAsync(url, {
    clientId,
    key: creds.key,
    cert: creds.cert,
    ca: creds.ca,
    rejectUnauthorized: true,
    protocolVersion: protocol,
    reconnectPeriod: 0,
    connectTimeout: 30_000,
    clean: true,
  });
  // An error after connecting must not crash the benchmark; the publish promises report it.
  client.on("error", () => undefined);
  return { client, connectMs: nowMs() - started };
}

export interface PublishRun {
  readonly sent: number;
  readonly acked: number;
  readonly seconds: number;
}

/**
 * Publishes `payloadFor(i)` for i = 0.. until `count` messages or `durationMs` have gone, keeping
 * at most `window` publishes unacknowledged (at QoS 0 "acknowledged" means written to the socket).
 * `onAck` sees each acknowledged index with the time it was published.
 */
export async function publishWindowed(
  client: MqttClient,
  topic: string,
  opts: {
    readonly qos: 0 | 1;
    readonly window: number;
    readonly count?: number;
    readonly durationMs?: number;
    readonly payloadFor: (i: number) => string | Buffer;
    readonly onAck?: (i: number, publishedAt: number) => void;
  },
): Promise<PublishRun> {
  const count = opts.count ?? Number.POSITIVE_INFINITY;
  const started = nowMs();
  const deadline = started + (opts.durationMs ?? Number.POSITIVE_INFINITY);
  let sent = 0;
  let acked = 0;
  let failure: Error | undefined;
  await new Promise<void>((resolve) => {
    let inFlight = 0;
    const pump = (): void => {
      while (
        failure === undefined &&
        inFlight < opts.window &&
        sent < count &&
        nowMs() < deadline
      ) {
        const i = sent++;
        const publishedAt = nowMs();
        inFlight++;
        client.publish(topic, opts.payloadFor(i), { qos: opts.qos }, (err) => {
          inFlight--;
          if (err) failure ??= err;
          else {
            acked++;
            opts.onAck?.(i, publishedAt);
          }
          if (inFlight === 0 && (failure !== undefined || sent >= count || nowMs() >= deadline)) {
            resolve();
          } else pump();
        });
      }
      if (inFlight === 0) resolve();
    };
    pump();
  });
  if (failure) throw failure;
  return { sent, acked, seconds: (nowMs() - started) / 1000 };
}
