// Policies 1-3: the IoT policy document audited the way Device Defender would audit it after
// deployment. Rules 1 and 2 come in pairs: mandatory outside the dev stacks, advisory in them.
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { normalizePolicy, PolicyDocumentError } from "../../core/iot-policy/policy";
import {
  type AuditFinding,
  allowAllFindings,
  misconfigurationFindings,
  overlyPermissiveFindings,
} from "../../core/iot-policy/policy-audit";
import type { NormalizedStatement } from "../../core/iot-policy/policy";
import { type Props, TYPES, devStacksSchema, inDevStack, str, validateType } from "./common";

type Audit = (statements: readonly NormalizedStatement[]) => AuditFinding[];

/** The statements of an IoT policy resource, or a violation if AWS would reject the document. */
function statementsOf(props: Props, report?: (m: string) => void): NormalizedStatement[] {
  const doc = props.policy;
  try {
    return normalizePolicy(doc);
  } catch (e) {
    if (!(e instanceof PolicyDocumentError)) throw e;
    report?.(`property policy is not a valid IoT policy document (${e.message}); fix the document`);
    return [];
  }
}

/**
 * One rule as two policies: `name` (mandatory, outside the dev stacks) and `name-in-dev`
 * (advisory, in them). CrossGuard gives each policy one enforcement level, so a rule that is
 * advisory in dev and mandatory elsewhere needs both halves; each reads `devStacks`.
 */
function stackAwarePair(
  name: string,
  description: string,
  audit: Audit,
  reportsInvalidDocuments: boolean,
): [ResourceValidationPolicy, ResourceValidationPolicy] {
  const half = (dev: boolean): ResourceValidationPolicy => ({
    name: dev ? `${name}-in-dev` : name,
    description: dev
      ? `${description} Dev stacks only (advisory); ${name} covers the other stacks.`
      : `${description} Stacks other than the dev stacks; ${name}-in-dev reports it as advisory in dev.`,
    enforcementLevel: dev ? "advisory" : "mandatory",
    severity: "critical",
    configSchema: devStacksSchema,
    validateResource: validateType(TYPES.iotPolicy, (props, args, report) => {
      if (inDevStack(args) !== dev) {
        args.notApplicable(dev ? "not a dev stack" : "dev stack (see the -in-dev policy)");
      }
      const policyName = str(props.name) ?? args.name;
      const say = (message: string) => report(`IoT policy ${policyName}: ${message}`);
      for (const f of audit(statementsOf(props, reportsInvalidDocuments ? say : undefined))) {
        say(f.message);
      }
    }),
  });
  return [half(false), half(true)];
}

/** Policy 1, the headline rule: `iot:*` (or `*`) on `*`, the seed's tutorial policy. */
export const [iotPolicyNoAllowAll, iotPolicyNoAllowAllInDev] = stackAwarePair(
  "iot-policy-no-allow-all",
  "IoT policies must not allow every IoT action (iot:* or *) on every resource (*).",
  allowAllFindings,
  true,
);

/** Policy 2: Device Defender's IOT_POLICY_OVERLY_PERMISSIVE_CHECK. */
export const [iotPolicyOverlyPermissive, iotPolicyOverlyPermissiveInDev] = stackAwarePair(
  "iot-policy-overly-permissive",
  "IoT policies must not be overly permissive in Device Defender's sense: Connect for any client id without iot:Connection.Thing.IsAttached, Publish/Subscribe/Receive on every topic or on other things' reserved topics, Allow with NotAction/NotResource.",
  overlyPermissiveFindings,
  false,
);

/** Policy 3: Device Defender's IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK. */
export const iotPolicyMisconfigured: ResourceValidationPolicy = {
  name: "iot-policy-misconfigured",
  description:
    "IoT policies must not put the MQTT wildcards + or # in a Deny statement, where they are literal characters and deny less than intended.",
  enforcementLevel: "advisory",
  severity: "medium",
  validateResource: validateType(TYPES.iotPolicy, (props, args, report) => {
    const policyName = str(props.name) ?? args.name;
    for (const f of misconfigurationFindings(statementsOf(props))) {
      report(`IoT policy ${policyName}: ${f.message}`);
    }
  }),
};
