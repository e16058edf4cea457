// The Pulumi program's entry point: validate the stack's config, refuse a stack not ready to
// deploy (core/deploy-readiness.ts), build the pipeline, export what
// a user needs next (`pulumi stack output`).
import { buildPipeline, readDeployableConfig } from "./program";

const outputs = buildPipeline(readDeployableConfig());

export const endpoint = outputs.endpoint;
export const thingNames = outputs.thingNames;
export const certificateArns = outputs.certificateArns;
export const certificatePems = outputs.certificatePems;
/** Secret; only in certificateMode generated (`pulumi stack output privateKeys --show-secrets`). */
export const privateKeys = outputs.privateKeys;
export const policyName = outputs.policyName;
export const ruleName = outputs.ruleName;
export const streamName = outputs.streamName;
export const bucketName = outputs.bucketName;
export const analytics = outputs.analytics;
/** certificateMode fleet-provisioning: template name, claim certificate and claim policy. */
export const provisioning = outputs.provisioning;
/** Secret; the claim certificate's key (`pulumi stack output claimPrivateKey --show-secrets`). */
export const claimPrivateKey = outputs.claimPrivateKey;
export const lake = outputs.lake;
export const monitoring = outputs.monitoring;
