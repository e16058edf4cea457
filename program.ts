// The Pulumi program as a function: reads the stack's config the way the CLI hands it over,
// validates it in one place (core/stack-config.ts) and builds the pipeline, returning the stack
// outputs. index.ts calls it once; the mocked runs (tests, check, bench) call it per stack.
import * as pulumi from "@pulumi/pulumi";
import type { AnalyticsOutputs } from "./components/analytics/hook";
import { TelemetryPipeline, type TelemetryPipelineArgs } from "./components/pipeline";
import { assertDeployable } from "./core/deploy-readiness";
import { UserError } from "./core/errors";
import { planPipeline, type PipelinePlan } from "./core/plan";
import { PROJECT, PROJECT_DIR } from "./core/project";
import {
  declaredKeys,
  parseStackConfig,
  type RawConfig,
  type StackConfig,
} from "./core/stack-config";

/**
 * The stack config from `pulumi.Config`: every key Pulumi.yaml declares plus `aws:region`. The
 * CLI applies Pulumi.yaml's defaults and hands objects over as JSON text; parseStackConfig takes
 * both, so the program, `npm run simulate` and the tests share one validation.
 */
export function readPulumiConfig(
  stack: string = pulumi.getStack(),
  dir: string = PROJECT_DIR,
): StackConfig {
  const ours = new pulumi.Config(PROJECT);
  const raw: RawConfig = {};
  for (const key of declaredKeys(dir)) {
    const value = ours.get(key);
    if (value !== undefined) raw[key] = value;
  }
  raw["aws:region"] = new pulumi.Config("aws").get("region");
  // Relative paths (csrDir) are relative to Pulumi.yaml, as the CLI runs the program there.
  return parseStackConfig(raw, stack, dir);
}

/**
 * What `pulumi preview` and `pulumi up` build from: the config's plan (core/plan.ts), refused in
 * one line when a derived name does not fit or when the stack
 * would deploy something nobody can use or nobody would notice (core/deploy-readiness.ts: CSRs
 * not made yet, alarms with nowhere to go, an unpinned connector jar outside dev).
 */
export function readDeployableConfig(
  stack: string = pulumi.getStack(),
  dir: string = PROJECT_DIR,
): PipelinePlan {
  try {
    const config = readPulumiConfig(stack, dir);
    const plan = planPipeline(config);
    assertDeployable(config, { dir });
    return plan;
  } catch (e) {
    // The CLI prints a RunError's message alone: one line, no stack trace.
    if (e instanceof UserError) throw new pulumi.RunError(e.message);
    throw e;
  }
}

/** What `pulumi stack output` shows, and what a user needs to connect a device. */
export interface PipelineOutputs {
  /** The account's `iot:Data-ATS` endpoint (port 8883, mutual TLS). */
  readonly endpoint: pulumi.Output<string>;
  readonly thingNames: pulumi.Output<string[]>;
  /** Certificate ARN by thing name. */
  readonly certificateArns: pulumi.Output<Record<string, string>>;
  /** Certificate PEM by thing name. */
  readonly certificatePems: pulumi.Output<Record<string, string>>;
  /** Private key PEM by thing name, a secret; only when AWS generated the key pairs. */
  readonly privateKeys?: pulumi.Output<Record<string, string>>;
  readonly policyName: pulumi.Output<string>;
  readonly ruleName: pulumi.Output<string>;
  readonly streamName: pulumi.Output<string>;
  readonly bucketName: pulumi.Output<string>;
  /** The analytics application's names and ARNs (components/analytics/hook.ts). */
  readonly analytics?: pulumi.Output<Record<keyof AnalyticsOutputs, string>>;
  /** The Glue database and table, the Athena workgroup and its saved queries (docs/lake.md). */
  readonly lake: pulumi.Output<Record<string, unknown>>;
  /** The alarms' topic, the alarms and the dashboard (docs/monitoring.md); none without alarms. */
  readonly monitoring?: pulumi.Output<Record<string, unknown>>;
  /** What a device needs to provision itself (certificateMode fleet-provisioning). */
  readonly provisioning?: pulumi.Output<ProvisioningOutputs>;
  /** The claim certificate's private key, a secret (certificateMode fleet-provisioning). */
  readonly claimPrivateKey?: pulumi.Output<string>;
}

/** The `provisioning` stack output: what `npm run simulate -- --aws --provision` reads. */
export interface ProvisioningOutputs {
  readonly templateName: string;
  readonly claimCertificatePem: string;
  readonly claimPolicyName: string;
  /** The pre-provisioning hook's function name, when there is one. */
  readonly hookFunctionName?: string;
}

function byThing(
  things: readonly string[],
  value: (thing: string) => pulumi.Output<string>,
): pulumi.Output<Record<string, string>> {
  return pulumi.all(Object.fromEntries(things.map((t) => [t, value(t)])));
}

function provisioningOutputs(
  pipeline: TelemetryPipeline,
): Pick<PipelineOutputs, "provisioning" | "claimPrivateKey"> {
  const p = pipeline.provisioning;
  if (p === undefined) return {};
  return {
    provisioning: pulumi
      .all([p.templateName, p.claimCertificatePem, p.claimPolicy.name, p.hook?.name])
      .apply(([templateName, claimCertificatePem, claimPolicyName, hookFunctionName]) => ({
        templateName,
        claimCertificatePem,
        claimPolicyName,
        ...(hookFunctionName === undefined ? {} : { hookFunctionName }),
      })),
    claimPrivateKey: p.claimPrivateKey,
  };
}

/** Builds the stack's pipeline from its plan and returns the stack outputs. */
export function buildPipeline(
  plan: PipelinePlan,
  opts: Pick<TelemetryPipelineArgs, "analytics"> = {},
): PipelineOutputs {
  const config = plan.config;
  const pipeline = new TelemetryPipeline(PROJECT, { plan, analytics: opts.analytics });
  // In fleet-provisioning mode no thing is registered by the stack: its devices register themselves.
  const things = config.provisioning === undefined ? config.things.map((t) => t.name) : [];
  const identity = (t: string) => pipeline.identities[t];
  // Per-thing outputs, once the fleet (made a chunk at a time) is complete.
  const fleet = (
    make: () => pulumi.Output<Record<string, string>>,
  ): pulumi.Output<Record<string, string>> => pulumi.output(pipeline.fleetReady.then(make));
  return {
    endpoint: pipeline.endpoint,
    thingNames: pipeline.registry.thingNames,
    certificateArns: fleet(() => byThing(things, (t) => identity(t).certificateArn)),
    // The provider marks certificatePem secret, but a certificate is public: devices and users
    // need it in the clear (`pulumi stack output certificatePems`).
    certificatePems: pulumi.unsecret(
      fleet(() => byThing(things, (t) => identity(t).certificatePem)),
    ),
    privateKeys:
      config.certificates.mode === "generated"
        ? pulumi.secret(
            fleet(() => byThing(things, (t) => identity(t).privateKey ?? pulumi.output(""))),
          )
        : undefined,
    policyName: pipeline.policy.policy.name,
    ruleName: pipeline.rule.ruleName,
    streamName: pipeline.delivery.streamName,
    bucketName: pipeline.storage.bucketName,
    ...provisioningOutputs(pipeline),
    lake: pulumi
      .all([pipeline.lake.database.name, pipeline.lake.table.name, pipeline.lake.workgroup.name])
      .apply(([database, table, workgroup]): Record<string, unknown> => ({
        database,
        table,
        workgroup,
        savedQueries: Object.keys(pipeline.lake.queries),
      })),
    monitoring:
      pipeline.alarms === undefined
        ? undefined
        : pulumi
            .all([pipeline.alarms.topic.arn, pipeline.alarms.dashboard.dashboardName])
            .apply(([topicArn, dashboard]): Record<string, unknown> => ({
              topicArn,
              dashboard,
              alarms: Object.keys(pipeline.alarms?.alarms ?? {}),
            })),
    analytics:
      pipeline.analytics?.outputs === undefined
        ? undefined
        : pulumi
            .output(pipeline.analytics.outputs)
            .apply((o): Record<keyof AnalyticsOutputs, string> => ({ ...o })),
  };
}
