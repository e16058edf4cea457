// The embedded local pipeline for one stack: the local CA's certificates for the stack's fleet and
// the mutual-TLS broker, started together; the IoT policy, the rule and the delivery plug in here.
import * as path from "node:path";
import { PROJECT_DIR, type StackConfig } from "../core/stack-config";
import { CONSOLE_IDENTITY, ensurePki, type Credentials } from "./ca";
import { LocalBroker } from "./broker";

export interface LocalPipelineOptions {
  /** Broker port on 127.0.0.1; default 0 (any free port). */
  readonly port?: number;
  /** Where certificates and state live; default `.local` in the project. */
  readonly stateDir?: string;
  /** Speeds up time-based behaviour (the Firehose buffer interval) by this factor; default 1. */
  readonly timeScale?: number;
  /** Receives one line per notable event (connects, refusals, denials). */
  readonly log?: (line: string) => void;
}

export interface LocalPipeline {
  /** `mqtts://127.0.0.1:PORT` */
  readonly url: string;
  readonly port: number;
  /** The local CA certificate (PEM) that devices trust. */
  readonly ca: string;
  readonly stateDir: string;
  readonly broker: LocalBroker;
  credentialsFor(thing: string): Credentials;
  consoleCredentials(): Credentials;
  /** Counts to show at the end of a run, in display order. */
  summary(): Array<{ label: string; value: string | number }>;
  /** Paths of the objects the pipeline delivered (empty until delivery is plugged in). */
  objects(): string[];
  stop(): Promise<void>;
}

/** The default state folder: git-ignored `.local/` in the project. */
export const DEFAULT_STATE_DIR = path.join(PROJECT_DIR, ".local");

export async function startLocalPipeline(
  config: StackConfig,
  opts: LocalPipelineOptions = {},
): Promise<LocalPipeline> {
  const stateDir = opts.stateDir ?? DEFAULT_STATE_DIR;
  const log = opts.log ?? (() => undefined);
  const things = config.things.map((t) => t.name);
  const pki = await ensurePki(path.join(stateDir, "pki"), [...things, CONSOLE_IDENTITY]);
  if (pki.issued > 0) {
    log(`local CA: issued ${pki.issued} certificate(s) under ${pki.dir} (keys mode 0600)`);
  }
  const broker = await LocalBroker.start({
    ca: pki.caPem,
    key: pki.server.key,
    cert: pki.server.cert,
    port: opts.port ?? 0,
  });
  broker.on("connect", (id, remote) => log(`broker: ${id.clientId} connected from ${remote}`));
  broker.on("tlsRefused", (remote, reason) => log(`broker: refused TLS from ${remote}: ${reason}`));
  broker.on("connectRefused", (clientId, thing, reason) =>
    log(`broker: refused CONNECT of ${clientId} (certificate ${thing ?? "none"}): ${reason}`),
  );
  broker.on("publishDenied", (id, topic, reason) =>
    log(`broker: denied ${id.clientId} publishing to ${topic}: ${reason}; disconnected`),
  );
  broker.on("publishFailed", (id, topic, err) =>
    log(`broker: could not store ${id.clientId}'s message on ${topic}: ${err.message}`),
  );
  broker.on("subscribeDenied", (id, filter, reason) =>
    log(`broker: denied ${id.clientId} subscribing to ${filter}: ${reason}`),
  );

  // analytics / policy / rule / delivery: the local-pipeline work sets broker hooks here
  // (broker.setHooks) and adds its own lines to summary() and objects().
  return {
    url: broker.url,
    port: broker.port,
    ca: pki.caPem,
    stateDir,
    broker,
    credentialsFor: (thing) => {
      if (!things.includes(thing)) {
        throw new Error(
          `${thing} is not a thing of stack ${config.stack} (fleet: ${things.join(", ")})`,
        );
      }
      return pki.credentialsFor(thing);
    },
    consoleCredentials: () => pki.credentialsFor(CONSOLE_IDENTITY),
    summary: () => [
      { label: "broker connections", value: broker.stats.connects },
      {
        label: "broker refusals (TLS / CONNECT)",
        value: `${broker.stats.tlsRefusals} / ${broker.stats.connectRefusals}`,
      },
      { label: "broker publishes accepted", value: broker.stats.publishes },
      { label: "broker publishes denied", value: broker.stats.publishDenials },
    ],
    objects: () => [],
    stop: () => broker.stop(),
  };
}
