// The Device Shadow rule: outside the dev stacks, a device's IoT policy reaches its own shadow only
// (docs/shadows.md). A device that can publish to another thing's /update can change what that
// thing is told to do; one that can subscribe to its responses reads its state.
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { normalizePolicy, PolicyDocumentError } from "../../core/iot-policy/policy";
import { otherThingsShadowFindings } from "../../core/iot-policy/policy-audit";
import { TYPES, devStacksSchema, inDevStack, str, validateType } from "./common";

export const iotPolicyShadowOwnThingOnly: ResourceValidationPolicy = {
  name: "iot-policy-shadow-own-thing-only",
  description:
    "Outside the dev stacks, IoT policies must not let a device reach other things' Device Shadows: iot:Publish on their shadow request topics, iot:Subscribe to their response topics (MQTT wildcards included), or iot:GetThingShadow/UpdateThingShadow/DeleteThingShadow on their thing.",
  enforcementLevel: "mandatory",
  severity: "high",
  configSchema: devStacksSchema,
  validateResource: validateType(TYPES.iotPolicy, (props, args, report) => {
    if (inDevStack(args)) args.notApplicable("dev stack");
    const policyName = str(props.name) ?? args.name;
    let statements;
    try {
      statements = normalizePolicy(props.policy);
    } catch (e) {
      if (e instanceof PolicyDocumentError) return; // iot-policy-no-allow-all reports it
      throw e;
    }
    for (const f of otherThingsShadowFindings(statements)) {
      report(`IoT policy ${policyName}: ${f.message}`);
    }
  }),
};
