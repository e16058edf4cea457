// Figure 3's server side, in a process of its own so that its memory is measured alone: either the
// whole local pipeline (policy, rule, durable delivery) or, for the baseline, the same broker alone.
import * as path from "node:path";
import type { SummaryRow } from "../core/display";
import { parseStackConfig, type RawConfig } from "../core/stack-config";
import { LocalBroker } from "../local/broker/broker";
import { ensurePki } from "../local/identity/ca";
import type { GuardStats } from "../local/broker/connection-guard";
import { startLocalPipeline } from "../local/pipeline/pipeline";
import { startDashboard, type LocalDashboard } from "../local/dashboard";
import type { DashboardServerStats } from "../local/dashboard/server";
import { peakRssMiB, rssMiB } from "./stats";

/** What bench/pipeline.ts sends: the mode, the stack's raw config and where state goes. */
export interface ServerRequest {
  readonly mode: "pipeline" | "broker";
  readonly stack: string;
  readonly raw: RawConfig;
  readonly stateDir: string;
  readonly things: readonly string[];
  /** The broker's port; default any free one (the soak restarts a pipeline on the same port). */
  readonly port?: number;
  /** Pipeline mode: serve the live dashboard page too (docs/dashboard.md). */
  readonly dashboard?: boolean;
}

export type ServerReply =
  | { type: "listening"; url: string; pkiDir: string; dashboardUrl?: string }
  | { type: "objects"; objects: string[] }
  | {
      type: "stopped";
      peakRssMiB: number;
      /** RSS every 250 ms while running, to show whether memory grows with the backlog. */
      rssSamplesMiB: number[];
      publishes: number;
      objects: string[];
      summary: SummaryRow[];
      /** The broker guard's counts (pipeline mode). */
      guard?: GuardStats;
      /** Records journaled and the journal's fsyncs (pipeline mode): the group commit's batches. */
      journal?: { records: number; fsyncs: number };
      /** What the dashboard's server did (with `dashboard`). */
      dashboard?: DashboardServerStats;
    };

async function main(): Promise<void> {
  const req = JSON.parse(process.argv[2]) as ServerRequest;
  const send = (m: ServerReply): Promise<void> =>
    new Promise((resolve) => process.send?.(m, () => resolve()));
  const samples: number[] = [];
  const sampler = setInterval(() => samples.push(rssMiB()), 250);
  const pkiDir = path.join(req.stateDir, "pki");
  let stop: () => Promise<
    Omit<Extract<ServerReply, { type: "stopped" }>, "type" | "peakRssMiB" | "rssSamplesMiB">
  >;
  let objects: () => string[] = () => [];
  let url: string;
  let dashboard: LocalDashboard | undefined;
  if (req.mode === "pipeline") {
    const config = parseStackConfig(req.raw, req.stack);
    const pipeline = await startLocalPipeline(config, { stateDir: req.stateDir, port: req.port });
    url = pipeline.url;
    objects = () => pipeline.objects();
    if (req.dashboard === true) dashboard = await startDashboard(pipeline, { things: req.things });
    stop = async () => {
      await pipeline.stop();
      const page = dashboard?.server.stats;
      await dashboard?.close();
      return {
        ...(page === undefined ? {} : { dashboard: { ...page } }),
        publishes: pipeline.broker.stats.publishes,
        objects: pipeline.objects(),
        summary: pipeline.summary(),
        guard: pipeline.broker.guard.stats,
        journal: {
          records: pipeline.delivery.stats.recordsIn,
          fsyncs: pipeline.delivery.stats.fsyncs,
        },
      };
    };
  } else {
    const pki = await ensurePki(pkiDir, req.things);
    const broker = await LocalBroker.start({
      ca: pki.caPem,
      key: pki.server.key,
      cert: pki.server.cert,
    });
    url = broker.url;
    stop = async () => {
      await broker.stop();
      return { publishes: broker.stats.publishes, objects: [], summary: [] };
    };
  }
  process.on("message", (m: unknown) => {
    if (m === "objects") void send({ type: "objects", objects: objects() });
    if (m !== "stop") return;
    void (async () => {
      clearInterval(sampler);
      const rest = await stop();
      await send({ type: "stopped", peakRssMiB: peakRssMiB(), rssSamplesMiB: samples, ...rest });
      process.exit(0);
    })();
  });
  process.on("disconnect", () => process.exit(0));
  await send({ type: "listening", url, pkiDir, dashboardUrl: dashboard?.url });
}

void main();
