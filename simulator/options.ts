// What `simulate` and `subscribe` take: their options and defaults, kept apart from the code
// that runs them so that `--help` and bad options answer without loading MQTT or TLS.

export type Target =
  | { readonly kind: "embedded"; readonly port?: number }
  | {
      readonly kind: "endpoint";
      readonly host: string;
      readonly port: number;
      readonly cert: string;
      readonly key: string;
      readonly ca?: string;
    }
  | { readonly kind: "aws"; readonly keyDir?: string };

/**
 * The MQTT version devices and the subscriber speak: 5 by default, as AWS's current Device SDK
 * samples connect (docs/devices.md); 4 is MQTT 3.1.1.
 */
export type MqttProtocol = 4 | 5;
export const DEFAULT_PROTOCOL: MqttProtocol = 5;

export interface SimulateOptions {
  readonly stack: string;
  readonly protocol: MqttProtocol;
  /** How many of the fleet's things publish; default all. */
  readonly devices?: number;
  /** Messages per second per device. */
  readonly rate: number;
  /** Seconds to run; ignored when `count` is set and this is undefined. */
  readonly durationS?: number;
  /** Messages per device, then stop. */
  readonly count?: number;
  readonly qos: 0 | 1;
  /** Topic or template with `{thing}`; default the stack's telemetryTopic. */
  readonly topic?: string;
  readonly source: "synthetic" | "replay";
  readonly csv?: string;
  readonly speedup?: number;
  readonly seed: number;
  /** Publishes per second per connection; 0 = unlimited. */
  readonly rateLimit: number;
  readonly maxInFlight?: number;
  readonly maxQueue?: number;
  readonly fast: boolean;
  readonly probe: boolean;
  readonly stateDir: string;
  readonly target: Target;
  /**
   * Fleet provisioning by claim: each device boots with the claim certificate and provisions
   * itself, from a CSR (`csr`, the key never leaves it) or with CreateKeysAndCertificate (`keys`).
   */
  readonly provision?: "csr" | "keys";
  /**
   * The live page of the embedded pipeline on 127.0.0.1 (docs/dashboard.md): its port, 0 for any
   * free one; undefined for none (`--no-dashboard`, or a run without the embedded pipeline).
   */
  readonly dashboard?: { readonly port: number };
  /**
   * Publish by Basic Ingest, to `$aws/rules/<rule>/<topic>` (iot-basic-ingest.html); without it,
   * only when the stack says its devices do (`basicIngest`).
   */
  readonly basicIngest?: boolean;
}

/** Where the run's lines go; `progress` may redraw one line in place. */
export interface Output {
  line(text: string): void;
  progress(text: string): void;
  /** Leaves the progress line as it stands; later lines go below it. */
  endProgress?(): void;
}

export const DEFAULT_DURATION_S = 30;

export interface SubscribeOptions {
  readonly stack: string;
  readonly protocol: MqttProtocol;
  /** Topic filter; default the stack's telemetry topic with `+` for `{thing}`. */
  readonly topic?: string;
  readonly qos: 0 | 1;
  /** Exit after this many messages. */
  readonly count?: number;
  readonly stateDir: string;
  readonly endpoint?: {
    readonly host: string;
    readonly port: number;
    readonly cert: string;
    readonly key: string;
    readonly ca?: string;
    readonly clientId: string;
  };
}
