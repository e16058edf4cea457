// The command line of `npm run simulate` and `npm run subscribe`: options, help, one-line errors
// (exit 2), signal handling, and the live progress line.
import * as path from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_STATE_DIR } from "../core/project";
import {
  DEFAULT_DURATION_S,
  DEFAULT_PROTOCOL,
  type MqttProtocol,
  type Output,
  type SimulateOptions,
  type SubscribeOptions,
  type Target,
} from "./options";
import { environmentError, UserError } from "../core/errors";
import { FD_MARGIN } from "./fd-limit";
import { isBasicIngest, topicProblem } from "../core/iot-limits";
import { runCommand } from "../core/command";

const SIMULATE_HELP = `Usage: npm run simulate -- [options]

Publishes telemetry from the stack's fleet, validated against core/telemetry.schema.json, over
mutual TLS. By default it starts the embedded local pipeline (a broker with a local CA that issues
one certificate per thing) and runs the dev fleet for ${DEFAULT_DURATION_S} seconds.

What runs
  --stack NAME          stack whose Pulumi.NAME.yaml gives fleet, topic and policy (default dev)
  --devices N           how many of the fleet's things publish (default: all of them). Each
                        device holds a connection, and one more at the embedded broker: a
                        fleet needs that many open files + ${FD_MARGIN}; one over ulimit -n is
                        refused before it starts, saying what to run (docs/devices.md)
  --rate R              messages per second per device (default 1)
  --duration S          seconds to run (default ${DEFAULT_DURATION_S}, unless --count is given)
  --count N             messages per device, then stop
  --qos 0|1             MQTT QoS (default 1); 2 is refused: AWS IoT does not support it
  --protocol 5|3.1.1    MQTT version (default 5, as AWS's Device SDK samples connect; 4 is
                        3.1.1). Under MQTT 5 a denied publish gets PUBACK 0x87, the device
                        stays connected; under 3.1.1 the broker disconnects it. With
                        --provision, the claim connections speak it too
  --topic T             topic, or a template where {thing} is the thing name
                        (default: the stack's telemetryTopic, dev: SeattleStoreTemp/1)
  --source KIND         synthetic (default) or replay
  --csv FILE            CSV for --source replay (default: vega-datasets' seattle-weather.csv)
  --speedup X           simulated seconds per real second (default 1 synthetic, 3600 replay)
  --seed N              seed of the synthetic generator (default 1)

Limits
  --rate-limit N|off    publishes per second per connection (default 100, AWS IoT's limit);
                        0 or off = unlimited (benchmarks)
  --max-in-flight N     unacknowledged QoS 1 messages per connection (default 20)
  --queue N             messages held per device while offline; the oldest are dropped and
                        counted beyond it (default 1000)

Target (default: the embedded local pipeline)
  --fast                run the local pipeline's Firehose buffer interval 60x faster
  --basic-ingest        publish by Basic Ingest, to $aws/rules/<ruleName>/<topic>: straight to the
                        stack's rule, no subscriber sees it (the default when the stack sets
                        basicIngest); the embedded pipeline's policy grants it for the run
  --no-probe            skip the final probe (one message outside the device's own topic,
                        to show whether the stack's IoT policy allows it)
  --port N              embedded broker port (default: any free port); with --endpoint the
                        endpoint's port (default 8883)
  --dashboard-port N    port of the live dashboard page on 127.0.0.1 (default: any free port;
                        its address is printed beside the broker's; docs/dashboard.md)
  --no-dashboard        no dashboard page
  --state-dir DIR       local CA, certificates and pipeline state (default .local)
  --endpoint HOST       publish to this MQTT broker instead, with:
    --cert FILE --key FILE [--ca FILE]   the device's certificate and key (PEM); {thing} in a
                        path stands for the thing name; without --ca the system's trust store
  --aws                 publish to the deployed stack: reads endpoint and certificates from
                        pulumi stack output --json --show-secrets --stack NAME
    --key-dir DIR       folder of <thing>.key files (csr certificate mode keeps keys off AWS)

Fleet provisioning (stacks in certificateMode fleet-provisioning, e.g. --stack fleet)
  --provision           each device boots with the claim certificate only, provisions itself
                        (CreateCertificateFromCsr: its key never leaves it, RegisterThing with
                        its serial), stores its identity under STATE-DIR/identities/ (keys
                        0600), reconnects with it and publishes; a later run reuses it.
                        Embedded pipeline or --aws
  --provision-keys      the same with CreateKeysAndCertificate (the stack must allow it)

  -h, --help            this text

Examples
  npm run simulate
  npm run simulate -- --stack prod --fast --duration 20
  npm run simulate -- --source replay --speedup 86400 --count 100
  npm run simulate -- --aws --stack dev
  npm run simulate -- --stack fleet --provision --fast
`;

const SUBSCRIBE_HELP = `Usage: npm run subscribe -- [options]

Prints every message that arrives on a topic filter (topic, then payload), like the AWS console's
MQTT test client. By default it attaches to the embedded pipeline of a running
\`npm run simulate\` (start that first, e.g. with --duration 600) as the local \`console\` identity.

  --topic FILTER        topic filter, + and # allowed (default: the stack's telemetry topic,
                        with + for {thing})
  --stack NAME          stack (default dev)
  --qos 0|1             subscription QoS (default 1)
  --protocol 5|3.1.1    MQTT version (default 5; 4 is 3.1.1)
  --count N             exit after N messages
  --state-dir DIR       where the running simulate keeps its state (default .local)
  --endpoint HOST --cert FILE --key FILE [--ca FILE] [--port 8883] [--client-id ID]
                        subscribe on another broker (e.g. AWS IoT) instead
  -h, --help            this text

Example
  npm run subscribe -- --topic 'SeattleStoreTemp/#'
  npm run subscribe -- --topic '$aws/events/presence/+/+'   (devices connecting and going)
`;

/** A repeat of the first stop signal within this long is the same signal, forwarded. */
const SIGNAL_ECHO_MS = 1000;

/** A bad option: one line saying what was wrong and what to do, exit code 2. */
class CliError extends UserError {}

function intOpt(name: string, v: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER) {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^-?\d+$/.test(v.trim()) || n < min || n > max) {
    throw new CliError(
      `--${name} ${v}: expected a whole number${max === Number.MAX_SAFE_INTEGER ? ` >= ${min}` : ` from ${min} to ${max}`}`,
    );
  }
  return n;
}

function numOpt(name: string, v: string | undefined, minExclusive: number) {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n <= minExclusive) {
    throw new CliError(`--${name} ${v}: expected a number greater than ${minExclusive}`);
  }
  return n;
}

function qosOpt(v: string | undefined): 0 | 1 {
  if (v === undefined || v === "1") return 1;
  if (v === "0") return 0;
  if (v === "2") {
    throw new CliError("--qos 2: AWS IoT Core does not support QoS 2; use --qos 0 or --qos 1");
  }
  throw new CliError(`--qos ${v}: expected 0 or 1`);
}

function protocolOpt(v: string | undefined): MqttProtocol {
  if (v === undefined) return DEFAULT_PROTOCOL;
  if (v === "5" || v === "5.0") return 5;
  if (v === "4" || v === "3.1.1") return 4;
  throw new CliError(`--protocol ${v}: expected 5 (MQTT 5) or 3.1.1 (also written 4)`);
}

function topicOpt(v: string | undefined, filter: boolean): string | undefined {
  if (v === undefined) return undefined;
  // The broker's own check (core/iot-limits.ts); {thing} is filled in later, so check a sample.
  const problem = topicProblem(Buffer.from(v.split("{thing}").join("x")));
  if (problem) {
    throw new CliError(
      `--topic ${JSON.stringify(v)} ${problem}: AWS IoT topics are 1-256 bytes of UTF-8 with at most 7 slashes`,
    );
  }
  if (!filter && /[+#]/.test(v)) {
    throw new CliError(`--topic ${v}: + and # are filters; publish to a concrete topic`);
  }
  // A subscriber may watch AWS IoT's own topics (lifecycle events, shadows: reserved-topics.html),
  // except Basic Ingest's, which reach their rule only (iot-basic-ingest.html).
  if (filter && isBasicIngest(v)) {
    throw new CliError(
      `--topic ${v}: Basic Ingest topics ($aws/rules/...) reach their rule only; no client can subscribe to them`,
    );
  }
  if (v.startsWith("$") && !(filter && v.startsWith("$aws/"))) {
    throw new CliError(
      `--topic ${v}: topics starting with $ are reserved${filter ? " (a subscriber may watch $aws/ topics)" : ""}`,
    );
  }
  return v;
}

type OptionSpecs = NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>["options"]>;

function parse(argv: string[], options: OptionSpecs) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  } catch (e) {
    // Node's messages run on with advice about positionals; the first sentence is the point.
    const msg = (e as Error).message.split(/\n|\. /)[0].replace(/\.$/, "");
    throw new CliError(`${msg}; see --help`);
  }
}

const COMMON = {
  stack: { type: "string" },
  qos: { type: "string" },
  protocol: { type: "string" },
  topic: { type: "string" },
  count: { type: "string" },
  port: { type: "string" },
  "state-dir": { type: "string" },
  endpoint: { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  ca: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

export function parseSimulateArgs(argv: string[]): SimulateOptions | "help" {
  const { values: v } = parse(argv, {
    ...COMMON,
    devices: { type: "string" },
    rate: { type: "string" },
    duration: { type: "string" },
    source: { type: "string" },
    csv: { type: "string" },
    speedup: { type: "string" },
    seed: { type: "string" },
    "rate-limit": { type: "string" },
    "max-in-flight": { type: "string" },
    queue: { type: "string" },
    fast: { type: "boolean" },
    "no-probe": { type: "boolean" },
    aws: { type: "boolean" },
    "key-dir": { type: "string" },
    provision: { type: "boolean" },
    "provision-keys": { type: "boolean" },
    "dashboard-port": { type: "string" },
    "no-dashboard": { type: "boolean" },
    "basic-ingest": { type: "boolean" },
  });
  const s = (k: string) => v[k] as string | undefined;
  const b = (k: string) => v[k] === true;
  if (b("help")) return "help";
  const source = s("source") ?? "synthetic";
  if (source !== "synthetic" && source !== "replay") {
    throw new CliError(`--source ${source}: expected synthetic or replay`);
  }
  if (s("csv") !== undefined && source !== "replay") {
    throw new CliError("--csv is for --source replay; add --source replay");
  }
  const rateLimitRaw = s("rate-limit");
  const rateLimit =
    rateLimitRaw === undefined
      ? 100
      : rateLimitRaw === "off"
        ? 0
        : intOpt("rate-limit", rateLimitRaw, 0);
  let target: Target;
  const port = intOpt("port", s("port"), 0, 65535);
  if (b("aws")) {
    if (s("endpoint") !== undefined) throw new CliError("--aws and --endpoint exclude each other");
    if (s("cert") !== undefined || s("key") !== undefined) {
      throw new CliError(
        "--aws reads certificates from the stack outputs; drop --cert/--key (use --key-dir in csr mode)",
      );
    }
    target = { kind: "aws", keyDir: s("key-dir") };
  } else if (s("endpoint") !== undefined) {
    const cert = s("cert");
    const key = s("key");
    if (cert === undefined || key === undefined) {
      throw new CliError(
        "--endpoint needs --cert FILE and --key FILE (the device's certificate and private key)",
      );
    }
    target = {
      kind: "endpoint",
      host: s("endpoint") as string,
      port: port ?? 8883,
      cert,
      key,
      ca: s("ca"),
    };
  } else {
    for (const k of ["cert", "key", "ca", "key-dir"]) {
      if (s(k) !== undefined)
        throw new CliError(`--${k} needs --endpoint HOST (or --aws for --key-dir)`);
    }
    target = { kind: "embedded", port };
  }
  if (target.kind !== "embedded" && b("fast")) {
    throw new CliError(
      "--fast speeds up the embedded pipeline only; drop it with --endpoint/--aws",
    );
  }
  const dashboardPort = intOpt("dashboard-port", s("dashboard-port"), 0, 65535);
  if (dashboardPort !== undefined && b("no-dashboard")) {
    throw new CliError("--dashboard-port and --no-dashboard exclude each other");
  }
  if (dashboardPort !== undefined && target.kind !== "embedded") {
    throw new CliError(
      "--dashboard-port: the dashboard shows the embedded pipeline; drop it with --endpoint/--aws",
    );
  }
  const provision = b("provision-keys") ? "keys" : b("provision") ? "csr" : undefined;
  if (provision !== undefined && target.kind === "endpoint") {
    throw new CliError(
      "--provision needs the claim certificate and template of a stack: use the embedded pipeline or --aws, not --endpoint",
    );
  }
  if (provision !== undefined && s("key-dir") !== undefined) {
    throw new CliError(
      "--key-dir is for pre-registered csr stacks; provisioned devices keep their keys under --state-dir",
    );
  }
  return {
    ...(provision === undefined ? {} : { provision }),
    ...(target.kind === "embedded" && !b("no-dashboard")
      ? { dashboard: { port: dashboardPort ?? 0 } }
      : {}),
    ...(b("basic-ingest") ? { basicIngest: true } : {}),
    stack: s("stack") ?? "dev",
    protocol: protocolOpt(s("protocol")),
    devices: intOpt("devices", s("devices"), 1),
    rate: numOpt("rate", s("rate"), 0) ?? 1,
    durationS: numOpt("duration", s("duration"), 0),
    count: intOpt("count", s("count"), 1),
    qos: qosOpt(s("qos")),
    topic: topicOpt(s("topic"), false),
    source,
    csv: s("csv") === undefined ? undefined : path.resolve(s("csv") as string),
    speedup: numOpt("speedup", s("speedup"), 0),
    seed: intOpt("seed", s("seed"), 0) ?? 1,
    rateLimit: rateLimit ?? 100,
    maxInFlight: intOpt("max-in-flight", s("max-in-flight"), 1, 65535),
    maxQueue: intOpt("queue", s("queue"), 1),
    fast: b("fast"),
    probe: !b("no-probe"),
    stateDir: path.resolve(s("state-dir") ?? DEFAULT_STATE_DIR),
    target,
  };
}

export function parseSubscribeArgs(argv: string[]): SubscribeOptions | "help" {
  const { values: v } = parse(argv, { ...COMMON, "client-id": { type: "string" } });
  const s = (k: string) => v[k] as string | undefined;
  if (v.help === true) return "help";
  let endpoint: SubscribeOptions["endpoint"];
  if (s("endpoint") !== undefined) {
    const cert = s("cert");
    const key = s("key");
    if (cert === undefined || key === undefined) {
      throw new CliError("--endpoint needs --cert FILE and --key FILE");
    }
    endpoint = {
      host: s("endpoint") as string,
      port: intOpt("port", s("port"), 1, 65535) ?? 8883,
      cert,
      key,
      ca: s("ca"),
      clientId: s("client-id") ?? "console",
    };
  } else {
    for (const k of ["cert", "key", "ca", "port", "client-id"]) {
      if (s(k) !== undefined) throw new CliError(`--${k} needs --endpoint HOST`);
    }
  }
  return {
    stack: s("stack") ?? "dev",
    protocol: protocolOpt(s("protocol")),
    topic: topicOpt(s("topic"), true),
    qos: qosOpt(s("qos")),
    count: intOpt("count", s("count"), 1),
    stateDir: path.resolve(s("state-dir") ?? DEFAULT_STATE_DIR),
    endpoint,
  };
}

/** Lines to stdout; the progress line redraws in place on a terminal and is a plain line otherwise. */
function terminalOutput(): Output {
  const tty = process.stdout.isTTY === true;
  let shown = "";
  return {
    line(text) {
      if (tty && shown) process.stdout.write("\r\x1b[K");
      process.stdout.write(`${text}\n`);
      if (tty && shown) process.stdout.write(shown);
    },
    progress(text) {
      if (tty) {
        shown = text;
        process.stdout.write(`\r\x1b[K${text}`);
      } else {
        process.stdout.write(`${text}\n`);
      }
    },
    endProgress() {
      if (tty && shown) process.stdout.write("\n");
      shown = "";
    },
  };
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const fail = (msg: string, code = 2) => {
    process.stderr.write(`${command ?? "iot-pipeline"}: ${msg}\n`);
    return code;
  };
  const controller = new AbortController();
  let first: { sig: NodeJS.Signals; at: number } | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    const now = performance.now();
    if (first === undefined) {
      first = { sig, at: now };
      process.stderr.write(`\n${sig}: stopping (again to quit at once)\n`);
      controller.abort();
      return;
    }
    // One signal to a process group arrives more than once: from the kernel, and again from a
    // parent that forwards it (npm run forwards SIGINT and SIGTERM to its script). A repeat of the
    // same signal that soon is that echo, not a second Ctrl-C.
    if (sig === first.sig && now - first.at < SIGNAL_ECHO_MS) return;
    process.exit(130); // a second Ctrl-C: the user means it
  };
  try {
    if (command === "simulate") {
      const opts = parseSimulateArgs(rest);
      if (opts === "help") {
        process.stdout.write(SIMULATE_HELP);
        return 0;
      }
      process.on("SIGINT", onSignal).on("SIGTERM", onSignal);
      const out = terminalOutput();
      try {
        const { simulate } = await import("./simulate");
        return await simulate(opts, out, controller.signal);
      } finally {
        out.endProgress?.();
      }
    }
    if (command === "subscribe") {
      const opts = parseSubscribeArgs(rest);
      if (opts === "help") {
        process.stdout.write(SUBSCRIBE_HELP);
        return 0;
      }
      process.on("SIGINT", onSignal).on("SIGTERM", onSignal);
      const { subscribe } = await import("./subscribe");
      return await subscribe(opts, terminalOutput(), controller.signal);
    }
    if (command === undefined || command === "--help" || command === "-h") {
      process.stdout.write(SIMULATE_HELP + "\n" + SUBSCRIBE_HELP);
      return command === undefined ? 2 : 0;
    }
    return fail(`unknown command ${JSON.stringify(command)}; use simulate or subscribe`);
  } catch (e) {
    // Every error a user can act on is a UserError (core/errors.ts), whichever module threw it;
    // a system error a user can fix (a full disk, a permission) is one line too. Anything else is
    // a bug, and its stack trace is worth having.
    if (e instanceof UserError) return fail(e.message, e.exitCode);
    const env = environmentError(e);
    if (env) return fail(env.message, env.exitCode);
    throw e;
  }
}

if (require.main === module) runCommand("iot-pipeline", () => main(process.argv.slice(2)));
