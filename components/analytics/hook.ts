// The pipeline's analytics hook: what an analytics application sees of the pipeline when it plugs
// in, and what it hands back. A module of its own so that the pipeline and the plug both depend on
// it, not on each other.
import type * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "../../core/stack-config";
import type { DeliveryStream } from "../delivery/delivery-stream";
import type { RuleAction } from "../rule/actions/action";

/** What the analytics application sees of the pipeline when it plugs in. */
export interface AnalyticsContext {
  /** The pipeline component: the analytics' parent. */
  readonly parent: pulumi.ComponentResource;
  /** The pipeline's name, to derive child names from. */
  readonly name: string;
  readonly config: StackConfig;
  /** The delivery bucket (the analytics may write its results under its own prefix). */
  readonly delivery: DeliveryStream;
}

/** What the analytics application hands back: the rule actions that feed it, and its outputs. */
export interface AnalyticsPlug {
  /** Actions the topic rule should also run on every matched message (a Kinesis action, say). */
  readonly ruleActions?: readonly RuleAction[];
  /** Extra stack outputs (names, ARNs). */
  readonly outputs?: Readonly<Record<string, pulumi.Input<unknown>>>;
}
