// Fleet provisioning by claim: the claim certificate's IoT policy and its audit.
import {
  actionCoverage,
  describeStatement,
  iotArn,
  resourceMatches,
  type IotArnContext,
  type NormalizedStatement,
  type PolicyDocument,
} from "../iot-policy/policy";
import {
  CREATE_FROM_CSR_TOPIC,
  CREATE_KEYS_TOPIC,
  registerThingTopic,
  TEMPLATE_NAME_PART,
} from "./topics";

// ---- The claim certificate's policy ----------------------------------------------------------
// https://docs.aws.amazon.com/iot/latest/developerguide/provision-wo-cert.html#claim-based

/**
 * Client ids a claim connection may use. AWS's example claim policy allows Connect on `*`, which
 * Device Defender flags (audit-chk-iot-policy-permissive), and with which a claim holder could
 * connect as a provisioned device's client id and disconnect it (one connection per client id).
 * The stack narrows it to a namespace no thing name of the fleet can be in.
 */
export const CLAIM_CLIENT_PREFIX = "claim-";

/** The provisioning topics' resource names (`topic/` or `topicfilter/` before them) a claim needs. */
export function claimTopicPatterns(templateName: string, createKeys: boolean): string[] {
  return [
    `${CREATE_FROM_CSR_TOPIC}/*`,
    ...(createKeys ? [`${CREATE_KEYS_TOPIC}/*`] : []),
    `${registerThingTopic(templateName)}/*`,
  ];
}

/**
 * The claim certificate's IoT policy: AWS's example, with Connect narrowed to the claim client ids
 * and the certificate calls to the ones the stack offers (CreateCertificateFromCsr always,
 * CreateKeysAndCertificate only when asked: it sends the private key over the wire).
 */
export function claimPolicy(
  ctx: IotArnContext,
  templateName: string,
  createKeys: boolean,
): PolicyDocument {
  const topics = claimTopicPatterns(templateName, createKeys);
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "ConnectForProvisioning",
        Effect: "Allow",
        Action: "iot:Connect",
        Resource: iotArn(ctx, `client/${CLAIM_CLIENT_PREFIX}*`),
      },
      {
        Sid: "ProvisioningRequestsAndResponses",
        Effect: "Allow",
        Action: ["iot:Publish", "iot:Receive"],
        Resource: topics.map((t) => iotArn(ctx, `topic/${t}`)),
      },
      {
        Sid: "ProvisioningResponseTopics",
        Effect: "Allow",
        Action: "iot:Subscribe",
        Resource: topics.map((t) => iotArn(ctx, `topicfilter/${t}`)),
      },
    ],
  };
}

/** A topic or topic filter of the fleet provisioning MQTT API, for any template. */
const PROVISIONING_NAME = new RegExp(
  `^\\$aws/(certificates/(create|create-from-csr)|provisioning-templates/${TEMPLATE_NAME_PART}/provision)(/.*)?$`,
);

/** A resource pattern's `topic/...` or `topicfilter/...` name, or undefined for other ARNs. */
function topicName(pattern: string): string | undefined {
  const m = /^(?:arn:[^:]*:iot:[^:]*:[^:]*:)?(topic|topicfilter)\/(.*)$/.exec(pattern);
  return m?.[2];
}

/** Probes: a topic outside the API, and other things' reserved topics. */
const OUTSIDE_PROBES = [
  "SeattleStoreTemp/zq-probe",
  "$aws/things/zq-probe-thing/shadow/update",
  "$aws/things/zq-probe-thing/jobs/notify",
  "$aws/rules/zq-probe",
  "zq-probe/any/topic",
];

/** Whether a topic pattern reaches a topic outside the provisioning API. */
function reachesOutside(pattern: string): boolean {
  const name = topicName(pattern);
  if (name === undefined) return pattern.includes("*") || pattern.includes("?");
  if (!/[*?]/.test(name)) return !PROVISIONING_NAME.test(name);
  return OUTSIDE_PROBES.some((p) => resourceMatches(name, p));
}

/** Whether a document grants anything on a provisioning topic (the mark of a claim policy). */
export function grantsProvisioningTopics(statements: readonly NormalizedStatement[]): boolean {
  return statements.some(
    (s) =>
      s.effect === "Allow" &&
      (s.resources ?? []).some((r) => {
        const name = topicName(r);
        return name !== undefined && PROVISIONING_NAME.test(name.replace(/\*$/, "x"));
      }),
  );
}

/** One finding of the claim audit: the statement and a message saying what must change. */
export interface ClaimFinding {
  readonly statement: NormalizedStatement;
  readonly message: string;
}

const TOPIC_ACTIONS = ["iot:Publish", "iot:Receive", "iot:Subscribe", "iot:RetainPublish"];
const OTHER_ACTIONS = [
  "iot:GetThingShadow",
  "iot:UpdateThingShadow",
  "iot:DeleteThingShadow",
  "iot:DescribeJobExecution",
  "iot:UpdateJobExecution",
  "iot:ZqProbeFutureAction",
];

/**
 * The claim policy rule: a claim certificate's policy allows Connect, and Publish, Receive and
 * Subscribe on the provisioning API's topics only; anything wider is what Device Defender reports
 * as IOT_POLICY_OVERLY_PERMISSIVE_CHECK, and here it would hand every device in the field a
 * shared credential with data-plane access.
 */
export function claimPolicyFindings(statements: readonly NormalizedStatement[]): ClaimFinding[] {
  const findings: ClaimFinding[] = [];
  for (const s of statements) {
    if (s.effect !== "Allow") continue;
    const where = describeStatement(s);
    const covers = actionCoverage(s);
    if (s.notActions || s.notResources) {
      findings.push({
        statement: s,
        message: `${where} is an Allow with NotAction/NotResource, which grants more than the provisioning topics; list the provisioning actions and topics instead`,
      });
      continue;
    }
    const others = OTHER_ACTIONS.filter(covers);
    if (others.length > 0) {
      findings.push({
        statement: s,
        message: `${where} allows ${others.includes("iot:ZqProbeFutureAction") ? "every IoT action" : others.join(", ")}; a claim certificate needs only iot:Connect and iot:Publish, iot:Receive, iot:Subscribe on the provisioning topics (IOT_POLICY_OVERLY_PERMISSIVE_CHECK)`,
      });
    }
    const topicActions = TOPIC_ACTIONS.filter(covers);
    if (topicActions.length === 0) continue;
    const outside = (s.resources ?? []).filter(reachesOutside);
    if (outside.length > 0) {
      findings.push({
        statement: s,
        message: `${where} allows ${topicActions.join(", ")} on ${outside.join(", ")}, outside the provisioning topics ($aws/certificates/create-from-csr/*, $aws/certificates/create/*, $aws/provisioning-templates/<template>/provision/*); a claim certificate must reach nothing else (IOT_POLICY_OVERLY_PERMISSIVE_CHECK)`,
      });
    }
  }
  return findings;
}
