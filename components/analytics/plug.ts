// Plugs the streaming window into the pipeline (components/pipeline.ts's `analytics` hook) when
// the stack's plan has one: the application is built from the plan's window spec, windows'
// delivery and Kinesis role, and the pipeline's bucket, and hands the rule its Kinesis action.
import type { AnalyticsContext, AnalyticsPlug } from "./hook";
import { StreamAnalytics } from "./stream-analytics";

/** The pipeline's analytics hook: a StreamAnalytics under the pipeline, or nothing when disabled. */
export function streamAnalyticsPlug(ctx: AnalyticsContext): AnalyticsPlug | undefined {
  const plan = ctx.plan.analytics;
  if (plan === undefined) return undefined;
  const analytics = new StreamAnalytics(
    `${ctx.name}-analytics`,
    {
      spec: plan.spec,
      bucketName: ctx.storage.bucketName,
      bucketArn: ctx.storage.bucketArn,
      windowsDelivery: plan.windowsDelivery,
      ruleActionRoleName: plan.ruleActionRoleName,
      bucketKeyArn: ctx.storage.kmsKeyArn,
      connector: plan.connector,
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
