// Policies 13-16: fleet provisioning by claim. The claim certificate's policy reaches only the
// provisioning topics; the provisioning role holds only the managed policy AWS names for it; a
// template names things with a fixed prefix; and (advisory) a template has a pre-provisioning hook.
import type {
  PolicyResource,
  ResourceValidationPolicy,
  StackValidationPolicy,
} from "@pulumi/policy";
import { normalizePolicy, PolicyDocumentError } from "../../core/iot-policy/policy";
import {
  claimPolicyFindings,
  grantsProvisioningTopics,
} from "../../core/provisioning/claim-policy";
import { templateThingNameFinding } from "../../core/provisioning/template";
import { TYPES, items, obj, refersTo, str, validateType } from "./common";

/** The one managed policy a provisioning role needs (provision-wo-cert.html#claim-based). */
export const PROVISIONING_ROLE_MANAGED_POLICIES: readonly string[] = [
  "arn:aws:iam::aws:policy/service-role/AWSIoTThingsRegistration",
];

/**
 * A policy's statements, or undefined when its document is not known yet (preview: read without
 * the engine's proxy, which would report every unknown it is asked for) or not one AWS accepts.
 */
function statementsOf(policy: PolicyResource) {
  const doc: unknown = Object.getOwnPropertyDescriptor(policy.props, "policy")?.value;
  if (typeof doc !== "string" && (typeof doc !== "object" || doc === null)) return undefined;
  try {
    return normalizePolicy(doc);
  } catch (e) {
    if (!(e instanceof PolicyDocumentError)) throw e;
    return undefined;
  }
}

export const iotClaimPolicyProvisioningOnly: StackValidationPolicy = {
  name: "iot-claim-policy-provisioning-only",
  description:
    "The IoT policy of a fleet provisioning claim certificate (one that grants the provisioning topics) allows nothing but Connect and Publish, Receive, Subscribe on the provisioning topics, as Device Defender's overly permissive check would require.",
  enforcementLevel: "mandatory",
  severity: "critical",
  validateStack: (args, report) => {
    // A claim policy is marked by what it grants: the provisioning topics. (A certificate left
    // without a thing by mistake is iot-certificate-attachments' to report, not a claim.)
    let claims = 0;
    for (const p of args.resources.filter((r) => r.type === TYPES.iotPolicy)) {
      const st = statementsOf(p);
      if (st === undefined || !grantsProvisioningTopics(st)) continue;
      claims++;
      const name = str(p.props.name) ?? p.name;
      for (const f of claimPolicyFindings(st)) report(`claim policy ${name}: ${f.message}`, p.urn);
    }
    if (claims === 0) args.notApplicable("the stack has no claim certificate policy");
  },
};

export const iamProvisioningRole: StackValidationPolicy = {
  name: "iam-provisioning-role",
  description:
    "A provisioning template's role is trusted by iot.amazonaws.com alone and holds the AWSIoTThingsRegistration managed policy and nothing broader.",
  enforcementLevel: "mandatory",
  severity: "high",
  validateStack: (args, report) => {
    const of = (t: string) => args.resources.filter((r) => r.type === t);
    const templates = of(TYPES.iotProvisioningTemplate);
    if (templates.length === 0) args.notApplicable("the stack has no provisioning template");
    const roles = of(TYPES.iamRole);
    for (const t of templates) {
      const role = roles.find((r) => refersTo(t, "provisioningRoleArn", r, ["arn"]));
      if (role === undefined) continue;
      const roleName = str(role.props.name) ?? role.name;
      const trust = obj(safeJson(role.props.assumeRolePolicy));
      const principals = items(trust?.Statement).flatMap((s) => {
        const service = obj(s.Principal)?.Service ?? (s.Principal === "*" ? "*" : undefined);
        return Array.isArray(service)
          ? service
          : service === undefined
            ? ["(not a service)"]
            : [service];
      });
      if (principals.length === 0 || principals.some((p) => p !== "iot.amazonaws.com")) {
        report(
          `provisioning role ${roleName} is trusted by ${principals.join(", ") || "nobody"}; trust only the iot.amazonaws.com service principal`,
          role.urn,
        );
      }
      const attached = [
        ...of(TYPES.iamRolePolicyAttachment)
          .filter((a) => refersTo(a, "role", role, ["name", "id"]))
          .map((a) => str(a.props.policyArn) ?? "(unknown)"),
        ...(Array.isArray(role.props.managedPolicyArns)
          ? role.props.managedPolicyArns.filter((a): a is string => typeof a === "string")
          : []),
      ];
      for (const arn of attached) {
        if (!PROVISIONING_ROLE_MANAGED_POLICIES.includes(arn)) {
          report(
            `provisioning role ${roleName} has ${arn} attached; a provisioning role needs only ${PROVISIONING_ROLE_MANAGED_POLICIES.join(", ")}: detach it`,
            role.urn,
          );
        }
      }
      const inline = of(TYPES.iamRolePolicy).filter((p) =>
        refersTo(p, "role", role, ["name", "id"]),
      );
      for (const p of inline) {
        report(
          `provisioning role ${roleName} has the inline policy ${str(p.props.name) ?? p.name}; AWS IoT needs only AWSIoTThingsRegistration for provisioning: remove it`,
          role.urn,
        );
      }
    }
  },
};

function safeJson(v: unknown): unknown {
  if (typeof v !== "string") return v;
  try {
    return JSON.parse(v);
  } catch {
    return undefined;
  }
}

export const iotProvisioningTemplateThingName: ResourceValidationPolicy = {
  name: "iot-provisioning-template-thing-name",
  description:
    "A provisioning template names every thing with a fixed prefix before the device's parameters, so a claim holder cannot choose any thing name.",
  enforcementLevel: "mandatory",
  severity: "high",
  validateResource: validateType(TYPES.iotProvisioningTemplate, (props, args, report) => {
    const finding = templateThingNameFinding(props.templateBody);
    if (finding !== undefined) {
      report(`provisioning template ${str(props.name) ?? args.name}: ${finding}`);
    }
  }),
};

export const iotProvisioningTemplateHook: ResourceValidationPolicy = {
  name: "iot-provisioning-template-hook",
  description:
    "A fleet provisioning template has a pre-provisioning hook, which AWS recommends to control which and how many devices an account onboards.",
  enforcementLevel: "advisory",
  severity: "medium",
  validateResource: validateType(TYPES.iotProvisioningTemplate, (props, args, report) => {
    if (str(props.type) === "JITP") args.notApplicable("a just-in-time provisioning template");
    if (obj(props.preProvisioningHook) === undefined) {
      report(
        `provisioning template ${str(props.name) ?? args.name} has no pre-provisioning hook, so any holder of the claim certificate can register any serial, or provision an already-provisioned one and connect as that thing; list the allowed serials (config iot-pipeline:provisioning.allowedSerials) or leave iot-pipeline:provisioning.allowReprovisioning false`,
      );
    }
  }),
};
