// The pack's policies as a list, importable by tests and `npm run check` without starting the
// pack's server (only ../index.ts constructs the PolicyPack).
import type { EnforcementLevel, Policies } from "@pulumi/policy";
import { iotCertificateAttachments, iotCertificateFromCsr } from "./certificates";
import { firehoseErrorLogging } from "./firehose";
import { iamRolePolicyLogGroupArn, iamRolePolicyNoWildcards } from "./iam";
import {
  iotPolicyMisconfigured,
  iotPolicyNoAllowAll,
  iotPolicyNoAllowAllInDev,
  iotPolicyOverlyPermissive,
  iotPolicyOverlyPermissiveInDev,
} from "./iot-policy";
import { kinesisAnalyticsSqlRetired } from "./kinesis-analytics";
import { cloudwatchPipelineAlarms, iotLoggingEnabled, snsAlarmTopicSubscribed } from "./monitoring";
import { s3BucketPrivateAndEncrypted } from "./s3";
import { iotPolicyShadowOwnThingOnly } from "./shadow";
import { s3BucketDenyInsecureTransport, s3BucketLifecycle } from "./storage";
import { iotTopicRuleChecked } from "./topic-rule";
import { iotTopicRuleRepublishTopic } from "./topic-rule-republish";
import { iotTopicRuleHttpConfirmedDestination } from "./topic-rule-http";
import { lambdaPermissionIotScoped } from "./lambda-permission";
import {
  iamProvisioningRole,
  iotClaimPolicyProvisioningOnly,
  iotProvisioningTemplateHook,
  iotProvisioningTemplateThingName,
} from "./provisioning";

export { setStackNameSource, currentStack, DEFAULT_DEV_STACKS, TYPES } from "./common";

/** The pack's name, as `pulumi preview` reports it. */
export const PACK_NAME = "iot-pipeline-guardrails";

/** The level of a policy that sets none (all of ours set one). */
export const PACK_ENFORCEMENT_LEVEL: EnforcementLevel = "advisory";

/** Every policy; the pack runs and reports them in this order. */
export const policies: Policies = [
  iotPolicyNoAllowAll,
  iotPolicyNoAllowAllInDev,
  iotPolicyOverlyPermissive,
  iotPolicyOverlyPermissiveInDev,
  iotPolicyMisconfigured,
  s3BucketPrivateAndEncrypted,
  firehoseErrorLogging,
  iamRolePolicyNoWildcards,
  iotTopicRuleChecked,
  iotCertificateFromCsr,
  kinesisAnalyticsSqlRetired,
  iotCertificateAttachments,
  iotClaimPolicyProvisioningOnly,
  iamProvisioningRole,
  iotProvisioningTemplateThingName,
  iotProvisioningTemplateHook,
  s3BucketDenyInsecureTransport,
  s3BucketLifecycle,
  iotLoggingEnabled,
  cloudwatchPipelineAlarms,
  iamRolePolicyLogGroupArn,
  snsAlarmTopicSubscribed,
  iotPolicyShadowOwnThingOnly,
  iotTopicRuleRepublishTopic,
  iotTopicRuleHttpConfirmedDestination,
  lambdaPermissionIotScoped,
];
