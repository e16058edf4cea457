// Plugs the streaming window into the pipeline (components/pipeline.ts's `analytics` hook) when
// the stack config enables it: the application is built from the config's window spec and the
// pipeline's bucket, and hands the rule its Kinesis action.
import type { AnalyticsContext, AnalyticsPlug } from "./hook";
import { windowsDeliveryConfig } from "../../core/delivery";
import { StreamAnalytics } from "./stream-analytics";

/** The pipeline's analytics hook: a StreamAnalytics under the pipeline, or nothing when disabled. */
export function streamAnalyticsPlug(ctx: AnalyticsContext): AnalyticsPlug | undefined {
  const spec = ctx.config.analytics;
  if (spec === undefined) return undefined;
  const analytics = new StreamAnalytics(
    `${ctx.name}-analytics`,
    {
      spec,
      bucketName: ctx.delivery.bucketName,
      bucketArn: ctx.delivery.bucket.arn,
      windowsDelivery: windowsDeliveryConfig(ctx.config.delivery, spec.prefix),
      ruleActionRoleName: `${ctx.config.rule.roleName}-kinesis`,
      bucketKeyArn: ctx.delivery.kmsKeyArn,
      connector: ctx.config.flinkConnector,
    },
    { parent: ctx.parent },
  );
  return {
    ruleActions: [analytics.ruleAction],
    outputs: {
      streamName: analytics.streamName,
      applicationName: analytics.applicationName,
      applicationArn: analytics.applicationArn,
      windowsUri: analytics.windowsUri,
      windowsStreamName: analytics.windowsStream.name,
      windowsDeliveryName: analytics.windowsDelivery.name,
    },
  };
}
