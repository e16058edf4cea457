// The local dashboard: a page on 127.0.0.1 that shows a running local pipeline live (feed.ts
// gathers, server.ts serves). `npm run simulate` starts one; so can any long-running pipeline.
import type { LocalPipeline } from "../pipeline/pipeline";
import { DashboardFeed, type DashboardFeedOptions } from "./feed";
import { DashboardServer, type DashboardServerOptions } from "./server";

export { DashboardFeed, LOCAL_FLINK_APPLICATION, metricKey } from "./feed";
export type { DashboardSnapshot, DashboardTick, DeviceClientCounts } from "./feed";
export { DashboardServer, objectPath } from "./server";

/** A page serving one pipeline's figures. */
export interface LocalDashboard {
  readonly server: DashboardServer;
  readonly feed: DashboardFeed;
  readonly url: string;
  /** The run is over: a last sample, then every page is told and the server stops. */
  close(): Promise<void>;
}

/** Serves `pipeline` on an already listening `server` (start it first: a busy port then stops nothing). */
export function attachDashboard(
  server: DashboardServer,
  pipeline: LocalPipeline,
  feedOptions: Omit<DashboardFeedOptions, "pipeline">,
): LocalDashboard {
  const feed = new DashboardFeed({ ...feedOptions, pipeline });
  server.attach(feed, pipeline.delivery.bucket.dir);
  return {
    server,
    feed,
    url: server.url,
    close: async () => {
      feed.finish();
      await server.close();
    },
  };
}

/** Starts a server and attaches it to a running pipeline. */
export async function startDashboard(
  pipeline: LocalPipeline,
  feedOptions: Omit<DashboardFeedOptions, "pipeline">,
  serverOptions: DashboardServerOptions = {},
): Promise<LocalDashboard> {
  const server = await DashboardServer.start(serverOptions);
  return attachDashboard(server, pipeline, feedOptions);
}
