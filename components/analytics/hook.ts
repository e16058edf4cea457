// The pipeline's analytics hook: what an analytics application sees of the pipeline when it plugs
// in, and what it hands back. A module of its own so that the pipeline and the plug both depend on
// it, not on each other.
import type * as pulumi from "@pulumi/pulumi";
import type { PipelinePlan } from "../../core/plan";
import type { RuleAction } from "../rule/actions/action";

/** The pipeline's bucket, as every writer into it and reader of it needs it. */
export interface PipelineStorage {
  readonly bucketName: pulumi.Output<string>;
  readonly bucketArn: pulumi.Output<string>;
  /** The bucket's customer-managed key, if any: writers into the bucket need its data keys. */
  readonly kmsKeyArn?: pulumi.Input<string>;
}

/** What the analytics application sees of the pipeline when it plugs in. */
export interface AnalyticsContext {
  /** The pipeline component: the analytics' parent. */
  readonly parent: pulumi.ComponentResource;
  /** The pipeline's name, to derive child names from. */
  readonly name: string;
  /** The stack's plan (core/plan.ts): `plan.analytics` is the window to build, if any. */
  readonly plan: PipelinePlan;
  /** The pipeline's bucket (the analytics writes its results under its own prefix). */
  readonly storage: PipelineStorage;
}

/** The analytics application's stack outputs (`pulumi stack output analytics`). */
export interface AnalyticsOutputs {
  /** The Kinesis stream the rule feeds. */
  readonly streamName: pulumi.Input<string>;
  readonly applicationName: pulumi.Input<string>;
  readonly applicationArn: pulumi.Input<string>;
  /** Where the windows land in the bucket (`s3://...`). */
  readonly windowsUri: pulumi.Input<string>;
  /** The Kinesis stream the application writes the windows to. */
  readonly windowsStreamName: pulumi.Input<string>;
  /** The Firehose stream that delivers the windows into the bucket. */
  readonly windowsDeliveryName: pulumi.Input<string>;
}

/** What the analytics application hands back: the rule actions that feed it, and its outputs. */
export interface AnalyticsPlug {
  /** Actions the topic rule should also run on every matched message (a Kinesis action, say). */
  readonly ruleActions?: readonly RuleAction[];
  /** Its stack outputs; the alarms watch its application and windows' stream. */
  readonly outputs?: AnalyticsOutputs;
}
