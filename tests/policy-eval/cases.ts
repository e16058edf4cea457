// The authorisation table: policy document(s), request, connection context and expected decision,
// each row citing the AWS page its expectation comes from. Expected decisions are read off the
// pages' text (IoT developer guide, IAM User Guide), never off what the evaluator does.
import * as fs from "node:fs";
import * as path from "node:path";
import type {
  CertificateAttributes,
  PolicyContext,
  PolicyDecision,
} from "../../core/iot-policy/policy-eval";

export type Feature =
  | "evaluation logic"
  | "wildcards"
  | "basic variables"
  | "thing variables"
  | "certificate variables"
  | "string operators"
  | "numeric operators"
  | "date operators"
  | "bool and null"
  | "IfExists"
  | "source IP"
  | "ARN operators"
  | "set operators"
  | "connect attributes"
  | "retained and will"
  | "AWS examples verbatim";

export interface PolicyCase {
  readonly feature: Feature;
  readonly name: string;
  /** The page the expectation comes from. */
  readonly source: string;
  readonly docs: readonly unknown[];
  readonly action: string;
  /** `client/x`, `topic/x`, `topicfilter/x` (the account below is prefixed) or a full ARN. */
  readonly resource: string;
  readonly context: PolicyContext;
  /** aws:CurrentTime; default 2026-06-01T12:00:00Z. */
  readonly time?: string;
  /** The decision, or the refusal of the document when the stack loads. */
  readonly want: PolicyDecision | { readonly refused: RegExp };
}

export const ACCOUNT_ARN = "arn:aws:iot:us-east-1:123456789012";
export const DEFAULT_TIME = "2026-06-01T12:00:00Z";

const IOT = "https://docs.aws.amazon.com/iot/latest/developerguide/";
const IAM = "https://docs.aws.amazon.com/IAM/latest/UserGuide/";
export const PAGES = {
  policies: `${IOT}iot-policies.html`,
  actions: `${IOT}iot-policy-actions.html`,
  variables: `${IOT}iot-policy-variables.html`,
  basic: `${IOT}basic-policy-variables.html`,
  thing: `${IOT}thing-policy-variables.html`,
  exclusive: `${IOT}exclusive-thing.html`,
  cert: `${IOT}cert-policy-variables.html`,
  certExamples: `${IOT}certificate-policy-examples.html`,
  connect: `${IOT}connect-policy.html`,
  pubSub: `${IOT}pub-sub-policy.html`,
  retained: `${IOT}retained-message-policy-examples.html`,
  thingExamples: `${IOT}thing-policy-examples.html`,
  mqtt: `${IOT}mqtt.html`,
  operators: `${IAM}reference_policies_elements_condition_operators.html`,
  multiValued: `${IAM}reference_policies_condition-single-vs-multi-valued-context-keys.html`,
  evaluation: `${IAM}reference_policies_evaluation-logic.html`,
  iamVariables: `${IAM}reference_policies_variables.html`,
  globalKeys: `${IAM}reference_policies_condition-keys.html`,
  iamConditions: `${IAM}reference_policies_elements_condition.html`,
} as const;

// ---- Contexts --------------------------------------------------------------------------------

const noCert: CertificateAttributes = {
  subject: {},
  issuer: {},
  subjectAltNames: {},
  issuerAltNames: {},
};

export function certificate(
  subject: Record<string, string[]>,
  more: Partial<CertificateAttributes> = {},
): CertificateAttributes {
  return { ...noCert, subject, ...more };
}

/** A device registered as a thing, connected with its thing name, certificate attached. */
export function registered(name: string, extra: Partial<PolicyContext> = {}): PolicyContext {
  return {
    clientId: name,
    thingName: name,
    isAttached: true,
    thingTypeName: "Thing_Type_Name",
    attributes: { attributeName: "attributeValue" },
    sourceIp: "203.0.113.7",
    secureTransport: true,
    certificateId: "a".repeat(64),
    certificate: certificate({ CommonName: [name] }),
    ...extra,
  };
}

/** A device whose certificate is attached to no thing. */
export function unregistered(clientId: string, extra: Partial<PolicyContext> = {}): PolicyContext {
  return {
    clientId,
    isAttached: false,
    attributes: {},
    sourceIp: "203.0.113.7",
    secureTransport: true,
    certificateId: "b".repeat(64),
    certificate: certificate({ CommonName: [clientId] }),
    ...extra,
  };
}

// ---- Documents -------------------------------------------------------------------------------

const doc = (...Statement: object[]) => ({ Version: "2012-10-17", Statement });
const allow = (Action: unknown, Resource: unknown, Condition?: object) => ({
  Effect: "Allow",
  Action,
  Resource,
  ...(Condition ? { Condition } : {}),
});
const deny = (Action: unknown, Resource: unknown, Condition?: object) => ({
  Effect: "Deny",
  Action,
  Resource,
  ...(Condition ? { Condition } : {}),
});
const a = (r: string) => `${ACCOUNT_ARN}:${r}`;
/** Allow iot:Publish on topic/t under one condition: the shape of most operator rows. */
const publishIf = (Condition: object) => doc(allow("iot:Publish", a("topic/t"), Condition));
const denyPublishIf = (Condition: object) =>
  doc(allow("iot:Publish", a("topic/t")), deny("iot:Publish", a("topic/t"), Condition));

interface Example {
  readonly page: string;
  readonly url: string;
  readonly block: number;
  readonly text: string;
}
const EXAMPLES = (
  JSON.parse(fs.readFileSync(path.join(__dirname, "aws-examples.json"), "utf8")) as {
    examples: Example[];
  }
).examples;

/** The examples the table uses, to check that none of the pages' documents is left out. */
export const USED_EXAMPLES = new Set<string>();

/** Every example of aws-examples.json, as `page #block`. */
export const ALL_EXAMPLES = EXAMPLES.map((e) => `${e.page} #${e.block}`);

/** An AWS example policy as printed on its page (block n, counted from 0). */
export function example(page: string, block: number): Example {
  const e = EXAMPLES.find((x) => x.page === page && x.block === block);
  if (!e) throw new Error(`no example ${page} #${block} in aws-examples.json`);
  USED_EXAMPLES.add(`${page} #${block}`);
  return e;
}

// ---- The table -------------------------------------------------------------------------------

type Row = [
  name: string,
  action: string,
  resource: string,
  context: PolicyContext,
  want: PolicyCase["want"],
  time?: string,
];

function rows(
  feature: Feature,
  source: string,
  docs: readonly unknown[],
  list: readonly Row[],
): PolicyCase[] {
  return list.map(([name, action, resource, context, want, time]) => ({
    feature,
    name,
    source,
    docs,
    action,
    resource,
    context,
    want,
    time,
  }));
}

/** Rows over one verbatim AWS example, named after its page and block. */
function exampleRows(page: string, block: number, list: readonly Row[], note = ""): PolicyCase[] {
  const e = example(page, block);
  return rows("AWS examples verbatim", e.url, [e.text], list).map((r) => ({
    ...r,
    name: `${page} #${block}${note}: ${r.name}`,
  }));
}

const t1 = registered("thing1");
const c1 = unregistered("client1");
const P = "iot:Publish";
const S = "iot:Subscribe";
const R = "iot:Receive";
const C = "iot:Connect";
const RP = "iot:RetainPublish";

export const CASES: PolicyCase[] = [
  // --- IAM's evaluation logic, as IoT policies follow it (iot-policies.html) ------------------
  ...rows(
    "evaluation logic",
    PAGES.evaluation,
    [doc(allow(P, a("topic/a")))],
    [
      ["an allowed action", P, "topic/a", t1, "allow"],
      ["denied by default: no statement allows it", S, "topicfilter/a", t1, "implicit-deny"],
    ],
  ),
  ...rows(
    "evaluation logic",
    PAGES.evaluation,
    [doc(allow("iot:*", "*"), deny(P, a("topic/secret")))],
    [
      ["an explicit Deny beats an Allow", P, "topic/secret", t1, "explicit-deny"],
      ["the Deny leaves other resources allowed", P, "topic/open", t1, "allow"],
    ],
  ),
  ...rows(
    "evaluation logic",
    PAGES.evaluation,
    [doc(deny(P, a("topic/secret"))), doc(allow("iot:*", "*"))],
    [["a Deny in one policy beats an Allow in another", P, "topic/secret", t1, "explicit-deny"]],
  ),
  ...rows(
    "evaluation logic",
    `${IAM}reference_policies_elements_action.html`,
    [doc(allow("IOT:publish", a("topic/a")))],
    [["action names are case-insensitive", P, "topic/a", t1, "allow"]],
  ),
  ...rows(
    "evaluation logic",
    `${IAM}reference_policies_elements_notaction.html`,
    [doc({ Effect: "Allow", NotAction: S, Resource: "*" })],
    [
      ["NotAction allows every other action", P, "topic/a", t1, "allow"],
      ["NotAction does not allow its own action", S, "topicfilter/a", t1, "implicit-deny"],
    ],
  ),
  ...rows(
    "evaluation logic",
    `${IAM}reference_policies_elements_notresource.html`,
    [doc({ Effect: "Allow", Action: P, NotResource: a("topic/secret") })],
    [
      ["NotResource allows every other resource", P, "topic/open", t1, "allow"],
      ["NotResource does not allow its own resource", P, "topic/secret", t1, "implicit-deny"],
    ],
  ),
  ...rows(
    "evaluation logic",
    PAGES.actions,
    [doc(allow(RP, a("topic/cfg")))],
    [
      ["iot:RetainPublish does not grant iot:Publish", P, "topic/cfg", t1, "implicit-deny"],
      ["iot:RetainPublish is its own action", RP, "topic/cfg", t1, "allow"],
    ],
  ),

  // --- Wildcards: * and ? in a policy, MQTT's + and # literal (iot-policy-variables.html) -----
  ...rows(
    "wildcards",
    PAGES.variables,
    [doc(allow(P, a("topic/sensors/*")))],
    [
      ["* matches any characters, across /", P, "topic/sensors/a/b/c", t1, "allow"],
      ["* matches the empty string", P, "topic/sensors/", t1, "allow"],
      ["the prefix before * must match", P, "topic/sensor/a", t1, "implicit-deny"],
    ],
  ),
  ...rows(
    "wildcards",
    PAGES.pubSub,
    [doc(allow(P, a("topic/some/?????/topic")))],
    [
      ["? matches exactly one character (five of them)", P, "topic/some/abcde/topic", t1, "allow"],
      ["?????: four characters do not match", P, "topic/some/abcd/topic", t1, "implicit-deny"],
      ["?????: six characters do not match", P, "topic/some/abcdef/topic", t1, "implicit-deny"],
    ],
  ),
  ...rows(
    "wildcards",
    PAGES.pubSub,
    [doc(allow(S, a("topicfilter/some/+/topic")))],
    [
      [
        "+ is literal: only the filter some/+/topic matches",
        S,
        "topicfilter/some/+/topic",
        t1,
        "allow",
      ],
      [
        "+ is literal: some/x/topic is not matched",
        S,
        "topicfilter/some/x/topic",
        t1,
        "implicit-deny",
      ],
    ],
  ),
  ...rows(
    "wildcards",
    PAGES.pubSub,
    [doc(allow(S, a("topicfilter/a/#")))],
    [
      ["# is literal: only the filter a/# matches", S, "topicfilter/a/#", t1, "allow"],
      ["# is literal: the filter a/b is not matched", S, "topicfilter/a/b", t1, "implicit-deny"],
    ],
  ),
  ...rows(
    "wildcards",
    PAGES.pubSub,
    [doc(allow(S, a("topicfilter/*")), deny(S, a("topicfilter/a/#")))],
    [["a Deny on topicfilter/a/# does not deny the filter a/b", S, "topicfilter/a/b", t1, "allow"]],
  ),
  ...rows(
    "wildcards",
    PAGES.iamVariables,
    [doc(allow(P, a("topic/star${*}lit")))],
    [
      ["${*} is a literal asterisk", P, "topic/star*lit", t1, "allow"],
      ["${*} is no wildcard", P, "topic/starXlit", t1, "implicit-deny"],
    ],
  ),
  ...rows(
    "wildcards",
    PAGES.iamVariables,
    [doc(allow(P, a("topic/q${?}/d${$}")))],
    [
      ["${?} and ${$} are the characters ? and $", P, "topic/q?/d$", t1, "allow"],
      ["${?} is no single-character wildcard", P, "topic/qx/d$", t1, "implicit-deny"],
    ],
  ),
  ...rows(
    "wildcards",
    PAGES.iamConditions,
    [doc(allow(P, "arn:aws:iot:us-east-1:123456789012:topic/CaseSensitive"))],
    [["resource ARNs are case-sensitive", P, "topic/casesensitive", t1, "implicit-deny"]],
  ),

  // --- Basic variables: iot:ClientId, aws:SourceIp (basic-policy-variables.html) ------------
  ...rows(
    "basic variables",
    PAGES.basic,
    [doc(allow(P, a("topic/my/topic/${iot:ClientId}")))],
    [
      ["${iot:ClientId} is the connection's client id", P, "topic/my/topic/client1", c1, "allow"],
      ["another client's topic", P, "topic/my/topic/client2", c1, "implicit-deny"],
    ],
  ),
  ...rows(
    "basic variables",
    PAGES.basic,
    [doc(allow(S, a("topicfilter/my/${iot:ClientId}/topic")))],
    [
      [
        "a client id of + subscribes to my/+/topic, as the page warns",
        S,
        "topicfilter/my/+/topic",
        unregistered("+"),
        "allow",
      ],
    ],
  ),
  ...rows(
    "basic variables",
    PAGES.basic,
    [doc(allow(P, a("topic/ip/${aws:SourceIp}")))],
    [
      ["${aws:SourceIp} is the client's address", P, "topic/ip/203.0.113.7", t1, "allow"],
      [
        "an IPv4 peer on a dual-stack socket is its IPv4 address",
        P,
        "topic/ip/198.51.100.9",
        registered("thing1", { sourceIp: "::ffff:198.51.100.9" }),
        "allow",
      ],
    ],
  ),
  ...rows(
    "basic variables",
    PAGES.iamVariables,
    [doc(allow(P, a("topic/${iot:ClientId}")))],
    [
      [
        "a client id holding * is no wildcard (unresolved: matches nothing)",
        P,
        "topic/anything",
        unregistered("*"),
        "implicit-deny",
      ],
    ],
  ),

  // --- Thing variables, exclusive and non-exclusive association (thing-policy-variables.html) --
  ...rows(
    "thing variables",
    PAGES.thing,
    [doc(allow(P, a("topic/${iot:Connection.Thing.ThingName}/*")))],
    [
      [
        "non-exclusive: client id = thing name resolves the thing",
        P,
        "topic/thing1/x",
        t1,
        "allow",
      ],
      [
        "non-exclusive: another client id leaves thing variables unresolved",
        P,
        "topic/thing1/x",
        registered("thing1", { clientId: "other-id" }),
        "implicit-deny",
      ],
      [
        "exclusive: the attached thing resolves whatever the client id",
        P,
        "topic/thing1/x",
        registered("thing1", { clientId: "other-id", association: "exclusive" }),
        "allow",
      ],
      [
        "exclusive, certificate attached to no thing: unresolved",
        P,
        "topic/thing1/x",
        unregistered("thing1", { association: "exclusive" }),
        "implicit-deny",
      ],
    ],
  ),
  ...rows(
    "thing variables",
    PAGES.thing,
    [doc(allow(C, "*", { Bool: { "iot:Connection.Thing.IsAttached": "true" } }))],
    [
      ["IsAttached true: thing attached, client id = thing name", C, "client/thing1", t1, "allow"],
      [
        "IsAttached false: certificate attached to no thing",
        C,
        "client/client1",
        c1,
        "implicit-deny",
      ],
      [
        "IsAttached false: non-exclusive and the client id is not the thing's name",
        C,
        "client/x",
        registered("thing1", { clientId: "x" }),
        "implicit-deny",
      ],
      [
        "IsAttached true: exclusive association, any client id",
        C,
        "client/x",
        registered("thing1", { clientId: "x", association: "exclusive" }),
        "allow",
      ],
    ],
  ),
  ...rows(
    "thing variables",
    PAGES.thing,
    [
      doc(
        allow(
          P,
          a(
            "topic/${iot:Connection.Thing.ThingTypeName}/${iot:Connection.Thing.Attributes[attributeName]}",
          ),
        ),
      ),
    ],
    [
      [
        "thing type and attribute variables",
        P,
        "topic/Thing_Type_Name/attributeValue",
        t1,
        "allow",
      ],
      [
        "a thing without that attribute leaves the resource unresolved",
        P,
        "topic/Thing_Type_Name/attributeValue",
        registered("thing1", { attributes: {} }),
        "implicit-deny",
      ],
    ],
  ),
  ...rows(
    "thing variables",
    PAGES.thing,
    [doc(allow(C, "*", { StringEquals: { "iot:ClientId": "${iot:Connection.Thing.ThingName}" } }))],
    [["a thing variable in a condition value", C, "client/thing1", t1, "allow"]],
  ),

  // --- Certificate variables (cert-policy-variables.html) -------------------------------------
  ...rows(
    "certificate variables",
    PAGES.cert,
    [doc(allow(P, a("topic/${iot:Certificate.Subject.Country}")))],
    [
      [
        "a multi-value attribute gives its first value",
        P,
        "topic/US",
        registered("thing1", { certificate: certificate({ Country: ["US", "CA"] }) }),
        "allow",
      ],
      [
        "not the second value",
        P,
        "topic/CA",
        registered("thing1", { certificate: certificate({ Country: ["US", "CA"] }) }),
        "implicit-deny",
      ],
      [
        "an attribute the certificate lacks: not substituted, authorization fails",
        P,
        "topic/US",
        registered("thing1", { certificate: certificate({}) }),
        "implicit-deny",
      ],
    ],
  ),
  ...rows(
    "certificate variables",
    PAGES.cert,
    [doc(allow(P, a("topic/${iot:Certificate.Subject.Country.1}")))],
    [
      [
        "Country.1 is the second country",
        P,
        "topic/CA",
        registered("thing1", { certificate: certificate({ Country: ["US", "CA"] }) }),
        "allow",
      ],
      [
        "an index that does not exist: no substitution, authorization fails",
        P,
        "topic/US",
        registered("thing1", { certificate: certificate({ Country: ["US"] }) }),
        "implicit-deny",
      ],
    ],
  ),
  ...rows(
    "certificate variables",
    PAGES.cert,
    [doc(allow(P, a("topic/${iot:Certificate.Subject.Organization.5}")))],
    [
      [
        "arrays are limited to five items; a sixth is ignored",
        P,
        "topic/O6",
        registered("thing1", {
          certificate: certificate({ Organization: ["O1", "O2", "O3", "O4", "O5", "O6"] }),
        }),
        "implicit-deny",
      ],
    ],
  ),
  ...rows(
    "certificate variables",
    PAGES.cert,
    [doc(allow(P, a("topic/${iot:Certificate.Subject.Organization}")))],
    [
      [
        "a value holding a wildcard character is not substituted",
        P,
        "topic/Acme*",
        registered("thing1", { certificate: certificate({ Organization: ["Acme*"] }) }),
        "implicit-deny",
      ],
      [
        "a value holding # is not substituted",
        P,
        "topic/Acme#1",
        registered("thing1", { certificate: certificate({ Organization: ["Acme#1"] }) }),
        "implicit-deny",
      ],
      [
        "a value over 1024 characters is not substituted",
        P,
        `topic/${"o".repeat(1025)}`,
        registered("thing1", { certificate: certificate({ Organization: ["o".repeat(1025)] }) }),
        "implicit-deny",
      ],
      [
        "special characters come prefixed with a backslash",
        P,
        "topic/O\\=Amazon.com Inc.",
        registered("thing1", { certificate: certificate({ Organization: ["O=Amazon.com Inc."] }) }),
        "allow",
      ],
    ],
  ),
  ...rows(
    "certificate variables",
    PAGES.cert,
    [
      doc(
        allow(P, a("topic/t"), {
          "ForAnyValue:StringEquals": { "iot:Certificate.Subject.OrganizationalUnit.List": "Ops" },
        }),
      ),
    ],
    [
      [
        ".List: any of the values",
        P,
        "topic/t",
        registered("thing1", { certificate: certificate({ OrganizationalUnit: ["Dev", "Ops"] }) }),
        "allow",
      ],
      [
        ".List: none of the values",
        P,
        "topic/t",
        registered("thing1", { certificate: certificate({ OrganizationalUnit: ["Dev"] }) }),
        "implicit-deny",
      ],
    ],
  ),
  ...rows(
    "certificate variables",
    PAGES.cert,
    [
      doc(
        allow(P, a("topic/${iot:Certificate.Issuer.CommonName}/${iot:Certificate.SerialNumber}")),
      ),
    ],
    [
      [
        "issuer attributes and the serial number",
        P,
        "topic/Fleet CA/0A1B",
        registered("thing1", {
          certificate: certificate(
            {},
            { issuer: { CommonName: ["Fleet CA"] }, serialNumber: "0A1B" },
          ),
        }),
        "allow",
      ],
    ],
  ),
  ...rows(
    "certificate variables",
    PAGES.cert,
    [doc(allow(P, a("topic/${iot:Certificate.Subject.AlternativeName.DNSName}")))],
    [
      [
        "subject alternative names",
        P,
        "topic/dev1.example.com",
        registered("thing1", {
          certificate: certificate({}, { subjectAltNames: { DNSName: ["dev1.example.com"] } }),
        }),
        "allow",
      ],
    ],
  ),
  ...rows(
    "certificate variables",
    PAGES.cert,
    [
      doc(
        allow(P, a("topic/t"), {
          "ForAnyValue:StringEquals": {
            "iot:Certificate.AvailableKeys": "iot:Certificate.Subject.AlternativeName.RFC822Name",
          },
        }),
      ),
    ],
    [
      [
        "AvailableKeys names the variables that hold values",
        P,
        "topic/t",
        registered("thing1", {
          certificate: certificate({}, { subjectAltNames: { RFC822Name: ["ops@example.com"] } }),
        }),
        "allow",
      ],
      ["AvailableKeys without that variable", P, "topic/t", t1, "implicit-deny"],
    ],
  ),
  ...rows(
    "certificate variables",
    PAGES.certExamples,
    [doc(allow(P, a("topic/${iot:CertificateId}")))],
    [
      ["${iot:CertificateId}", P, `topic/${"a".repeat(64)}`, t1, "allow"],
      ["another certificate's id", P, `topic/${"b".repeat(64)}`, t1, "implicit-deny"],
    ],
  ),

  // --- String operators (IAM condition operators) -------------------------------------------
  ...rows(
    "string operators",
    PAGES.operators,
    [publishIf({ StringEquals: { "iot:ClientId": "thing1" } })],
    [
      ["StringEquals matches", P, "topic/t", t1, "allow"],
      ["StringEquals is case-sensitive", P, "topic/t", registered("Thing1"), "implicit-deny"],
    ],
  ),
  ...rows(
    "string operators",
    PAGES.operators,
    [publishIf({ StringEquals: { "iot:ClientId": ["a", "thing1"] } })],
    [["several values for one key: any of them (OR)", P, "topic/t", t1, "allow"]],
  ),
  ...rows(
    "string operators",
    PAGES.operators,
    [publishIf({ StringNotEquals: { "iot:ClientId": ["a", "b"] } })],
    [
      ["StringNotEquals: none of the values (NOR), true", P, "topic/t", t1, "allow"],
      [
        "StringNotEquals: equal to one of them, false",
        P,
        "topic/t",
        unregistered("b"),
        "implicit-deny",
      ],
    ],
  ),
  ...rows(
    "string operators",
    PAGES.operators,
    [publishIf({ StringEqualsIgnoreCase: { "iot:ClientId": "THING1" } })],
    [["StringEqualsIgnoreCase", P, "topic/t", t1, "allow"]],
  ),
  ...rows(
    "string operators",
    PAGES.operators,
    [publishIf({ StringNotEqualsIgnoreCase: { "iot:ClientId": "THING1" } })],
    [["StringNotEqualsIgnoreCase", P, "topic/t", t1, "implicit-deny"]],
  ),
  ...rows(
    "string operators",
    PAGES.operators,
    [publishIf({ StringLike: { "iot:ClientId": "thing?" } })],
    [
      ["StringLike with ?", P, "topic/t", t1, "allow"],
      ["StringLike ? is one character", P, "topic/t", registered("thing10"), "implicit-deny"],
    ],
  ),
  ...rows(
    "string operators",
    PAGES.operators,
    [publishIf({ StringNotLike: { "iot:ClientId": "admin-*" } })],
    [
      ["StringNotLike, not matching", P, "topic/t", t1, "allow"],
      ["StringNotLike, matching", P, "topic/t", unregistered("admin-1"), "implicit-deny"],
    ],
  ),
  ...rows(
    "string operators",
    PAGES.iamConditions,
    [publishIf({ StringEquals: { "IOT:CLIENTID": "thing1" } })],
    [["condition key names are case-insensitive", P, "topic/t", t1, "allow"]],
  ),
  ...rows(
    "string operators",
    PAGES.iamConditions,
    [
      publishIf({
        StringEquals: { "iot:ClientId": "thing1", "iot:Connection.Thing.ThingTypeName": "other" },
      }),
    ],
    [["several keys in one operator: all of them (AND)", P, "topic/t", t1, "implicit-deny"]],
  ),
  ...rows(
    "string operators",
    PAGES.iamConditions,
    [
      publishIf({
        StringEquals: { "iot:ClientId": "thing1" },
        StringLike: { "iot:Connection.Thing.ThingTypeName": "Thing_*" },
      }),
    ],
    [["several operators: all of them (AND)", P, "topic/t", t1, "allow"]],
  ),
  ...rows(
    "string operators",
    PAGES.operators,
    [publishIf({ StringEquals: { "iot:Connection.Thing.ThingTypeName": "Thing_Type_Name" } })],
    [["a key absent from the request: the condition is false", P, "topic/t", c1, "implicit-deny"]],
  ),
  ...rows(
    "string operators",
    PAGES.operators,
    [publishIf({ StringNotEquals: { "iot:Connection.Thing.ThingTypeName": "Thing_Type_Name" } })],
    [["a key absent, negated operator: the condition is true", P, "topic/t", c1, "allow"]],
  ),

  // --- Numeric operators ------------------------------------------------------------------------
  ...rows(
    "numeric operators",
    PAGES.operators,
    [publishIf({ NumericLessThan: { "iot:Connection.Thing.Attributes[floor]": "5" } })],
    [
      [
        "NumericLessThan, true",
        P,
        "topic/t",
        registered("t", { attributes: { floor: "3" } }),
        "allow",
      ],
      [
        "NumericLessThan, equal is false",
        P,
        "topic/t",
        registered("t", { attributes: { floor: "5" } }),
        "implicit-deny",
      ],
      [
        "numbers compare as numbers (10 > 5)",
        P,
        "topic/t",
        registered("t", { attributes: { floor: "10" } }),
        "implicit-deny",
      ],
      [
        "a value that is no number never matches",
        P,
        "topic/t",
        registered("t", { attributes: { floor: "x" } }),
        "implicit-deny",
      ],
    ],
  ),
  ...rows(
    "numeric operators",
    PAGES.operators,
    [publishIf({ NumericLessThanEquals: { "iot:Connection.Thing.Attributes[floor]": "5" } })],
    [
      [
        "NumericLessThanEquals, equal",
        P,
        "topic/t",
        registered("t", { attributes: { floor: "5.0" } }),
        "allow",
      ],
    ],
  ),
  ...rows(
    "numeric operators",
    PAGES.operators,
    [publishIf({ NumericGreaterThan: { "iot:Connection.Thing.Attributes[floor]": "5" } })],
    [
      [
        "NumericGreaterThan",
        P,
        "topic/t",
        registered("t", { attributes: { floor: "6" } }),
        "allow",
      ],
    ],
  ),
  ...rows(
    "numeric operators",
    PAGES.operators,
    [publishIf({ NumericGreaterThanEquals: { "iot:Connection.Thing.Attributes[floor]": "5" } })],
    [
      [
        "NumericGreaterThanEquals",
        P,
        "topic/t",
        registered("t", { attributes: { floor: "4" } }),
        "implicit-deny",
      ],
    ],
  ),
  ...rows(
    "numeric operators",
    PAGES.operators,
    [publishIf({ NumericEquals: { "iot:Connection.Thing.Attributes[floor]": ["1", "2"] } })],
    [
      [
        "NumericEquals, one of several values",
        P,
        "topic/t",
        registered("t", { attributes: { floor: "2" } }),
        "allow",
      ],
    ],
  ),
  ...rows(
    "numeric operators",
    PAGES.operators,
    [publishIf({ NumericNotEquals: { "iot:Connection.Thing.Attributes[floor]": "13" } })],
    [
      [
        "NumericNotEquals",
        P,
        "topic/t",
        registered("t", { attributes: { floor: "13" } }),
        "implicit-deny",
      ],
    ],
  ),

  // --- Date operators on aws:CurrentTime / aws:EpochTime ---------------------------------------
  ...rows(
    "date operators",
    PAGES.operators,
    [publishIf({ DateLessThan: { "aws:CurrentTime": "2026-12-31T23:59:59Z" } })],
    [
      ["DateLessThan before the date", P, "topic/t", t1, "allow", "2026-06-01T00:00:00Z"],
      ["DateLessThan after the date", P, "topic/t", t1, "implicit-deny", "2027-01-01T00:00:00Z"],
    ],
  ),
  ...rows(
    "date operators",
    PAGES.operators,
    [publishIf({ DateGreaterThanEquals: { "aws:CurrentTime": "2026-06-01" } })],
    [["a date without a time is midnight UTC", P, "topic/t", t1, "allow", "2026-06-01T00:00:00Z"]],
  ),
  ...rows(
    "date operators",
    PAGES.operators,
    [publishIf({ DateGreaterThan: { "aws:CurrentTime": "1780000000" } })],
    [
      ["a policy date in epoch seconds", P, "topic/t", t1, "allow", "2026-06-01T00:00:00Z"],
      ["epoch seconds, earlier", P, "topic/t", t1, "implicit-deny", "2026-01-01T00:00:00Z"],
    ],
  ),
  ...rows(
    "date operators",
    PAGES.globalKeys,
    [publishIf({ DateLessThanEquals: { "aws:EpochTime": "2026-06-01T12:00:00Z" } })],
    [["aws:EpochTime compared as a date", P, "topic/t", t1, "allow", "2026-06-01T12:00:00Z"]],
  ),
  ...rows(
    "date operators",
    PAGES.operators,
    [publishIf({ DateNotEquals: { "aws:CurrentTime": "2026-06-01T12:00:00Z" } })],
    [["DateNotEquals at that instant", P, "topic/t", t1, "implicit-deny", "2026-06-01T12:00:00Z"]],
  ),
  ...rows(
    "date operators",
    PAGES.operators,
    [publishIf({ DateEquals: { "aws:CurrentTime": "2026-06-01T12:00:00+00:00" } })],
    [["DateEquals with a zone offset", P, "topic/t", t1, "allow", "2026-06-01T12:00:00Z"]],
  ),
  ...rows(
    "date operators",
    PAGES.globalKeys,
    [publishIf({ NumericLessThan: { "aws:EpochTime": "1780000000" } })],
    [["aws:EpochTime with a numeric operator", P, "topic/t", t1, "allow", "2026-01-01T00:00:00Z"]],
  ),

  // --- Bool and Null ----------------------------------------------------------------------------
  ...rows(
    "bool and null",
    PAGES.operators,
    [publishIf({ Bool: { "aws:SecureTransport": "true" } })],
    [
      ["Bool: the connection is TLS", P, "topic/t", t1, "allow"],
      [
        "Bool: key absent",
        P,
        "topic/t",
        registered("t", { secureTransport: undefined }),
        "implicit-deny",
      ],
    ],
  ),
  ...rows(
    "bool and null",
    PAGES.operators,
    [denyPublishIf({ Bool: { "iot:Connection.Thing.IsAttached": "FALSE" } })],
    [
      ["a Deny on IsAttached false (values case-insensitive)", P, "topic/t", c1, "explicit-deny"],
      ["the Deny does not fire for an attached thing", P, "topic/t", t1, "allow"],
    ],
  ),
  ...rows(
    "bool and null",
    PAGES.operators,
    [publishIf({ Null: { "iot:Connection.Thing.ThingTypeName": "true" } })],
    [
      ["Null true: the key is absent", P, "topic/t", c1, "allow"],
      ["Null true: the key is present", P, "topic/t", t1, "implicit-deny"],
    ],
  ),
  ...rows(
    "bool and null",
    PAGES.operators,
    [publishIf({ Null: { "iot:Certificate.Subject.Organization": "false" } })],
    [
      [
        "Null false: the certificate has an organisation",
        P,
        "topic/t",
        registered("t", { certificate: certificate({ Organization: ["Acme"] }) }),
        "allow",
      ],
      ["Null false: it has none", P, "topic/t", t1, "implicit-deny"],
    ],
  ),
  ...rows(
    "bool and null",
    PAGES.operators,
    [publishIf({ Null: { "iot:ConnectAttributes": "true" } })],
    [
      ["Null on a multi-valued key: an empty set is absent", P, "topic/t", t1, "allow"],
      [
        "Null on a multi-valued key: a value makes it present",
        P,
        "topic/t",
        registered("t", { connectAttributes: ["LastWill"] }),
        "implicit-deny",
      ],
    ],
  ),

  // --- IfExists -------------------------------------------------------------------------------
  ...rows(
    "IfExists",
    PAGES.operators,
    [
      publishIf({
        StringEqualsIfExists: { "iot:Connection.Thing.ThingTypeName": "Thing_Type_Name" },
      }),
    ],
    [
      ["IfExists: key absent, the condition is true", P, "topic/t", c1, "allow"],
      ["IfExists: key present and matching", P, "topic/t", t1, "allow"],
      [
        "IfExists: key present, not matching",
        P,
        "topic/t",
        registered("t", { thingTypeName: "other" }),
        "implicit-deny",
      ],
    ],
  ),
  ...rows(
    "IfExists",
    PAGES.operators,
    [publishIf({ IpAddressIfExists: { "aws:SourceIp": "10.0.0.0/8" } })],
    [
      [
        "IpAddressIfExists with no source address",
        P,
        "topic/t",
        registered("t", { sourceIp: undefined }),
        "allow",
      ],
    ],
  ),
  ...rows(
    "IfExists",
    PAGES.operators,
    [publishIf({ "ForAnyValue:StringEqualsIfExists": { "iot:ConnectAttributes": "LastWill" } })],
    [["ForAnyValue with IfExists: an empty set is true", P, "topic/t", t1, "allow"]],
  ),

  // --- aws:SourceIp with IpAddress / NotIpAddress ------------------------------------------------
  ...rows(
    "source IP",
    PAGES.operators,
    [publishIf({ IpAddress: { "aws:SourceIp": "203.0.113.0/24" } })],
    [
      ["IpAddress: inside the block", P, "topic/t", t1, "allow"],
      [
        "IpAddress: outside the block",
        P,
        "topic/t",
        registered("t", { sourceIp: "198.51.100.1" }),
        "implicit-deny",
      ],
      [
        "IpAddress: an IPv4 peer on a dual-stack socket",
        P,
        "topic/t",
        registered("t", { sourceIp: "::ffff:203.0.113.200" }),
        "allow",
      ],
      [
        "IpAddress: no source address",
        P,
        "topic/t",
        registered("t", { sourceIp: undefined }),
        "implicit-deny",
      ],
    ],
  ),
  ...rows(
    "source IP",
    PAGES.operators,
    [publishIf({ IpAddress: { "aws:SourceIp": ["10.0.0.0/8", "203.0.113.7"] } })],
    [
      ["IpAddress: a single address among blocks", P, "topic/t", t1, "allow"],
      [
        "IpAddress: the single address only",
        P,
        "topic/t",
        registered("t", { sourceIp: "203.0.113.8" }),
        "implicit-deny",
      ],
    ],
  ),
  ...rows(
    "source IP",
    PAGES.operators,
    [publishIf({ IpAddress: { "aws:SourceIp": "2001:db8::/32" } })],
    [
      [
        "IpAddress: IPv6 block",
        P,
        "topic/t",
        registered("t", { sourceIp: "2001:db8:1::5" }),
        "allow",
      ],
      [
        "IpAddress: IPv6 outside",
        P,
        "topic/t",
        registered("t", { sourceIp: "2001:db9::5" }),
        "implicit-deny",
      ],
      ["IpAddress: an IPv4 peer is not in an IPv6 block", P, "topic/t", t1, "implicit-deny"],
    ],
  ),
  ...rows(
    "source IP",
    PAGES.operators,
    [denyPublishIf({ NotIpAddress: { "aws:SourceIp": "203.0.113.0/24" } })],
    [
      ["a Deny on NotIpAddress: inside the block, allowed", P, "topic/t", t1, "allow"],
      [
        "a Deny on NotIpAddress: outside, denied",
        P,
        "topic/t",
        registered("t", { sourceIp: "192.0.2.1" }),
        "explicit-deny",
      ],
      [
        "NotIpAddress with no source address: true, denied",
        P,
        "topic/t",
        registered("t", { sourceIp: undefined }),
        "explicit-deny",
      ],
    ],
  ),

  // --- ARN operators on iot:LastWillTopic -----------------------------------------------------
  ...rows(
    "ARN operators",
    PAGES.operators,
    [
      doc(
        allow(C, "*", {
          ArnLike: { "iot:LastWillTopic": "arn:aws:iot:*:123456789012:topic/wills/*" },
        }),
      ),
    ],
    [
      [
        "ArnLike: the will's topic",
        C,
        "client/thing1",
        registered("thing1", { lastWillTopic: a("topic/wills/thing1") }),
        "allow",
      ],
      [
        "ArnLike: another topic",
        C,
        "client/thing1",
        registered("thing1", { lastWillTopic: a("topic/other") }),
        "implicit-deny",
      ],
      [
        "ArnLike: * in the region part matches that part",
        C,
        "client/thing1",
        registered("thing1", { lastWillTopic: "arn:aws:iot:eu-west-1:123456789012:topic/wills/x" }),
        "allow",
      ],
      [
        "ArnLike: another account",
        C,
        "client/thing1",
        registered("thing1", { lastWillTopic: "arn:aws:iot:us-east-1:999999999999:topic/wills/x" }),
        "implicit-deny",
      ],
      ["ArnLike: no will, no key: false", C, "client/thing1", t1, "implicit-deny"],
    ],
  ),
  ...rows(
    "ARN operators",
    PAGES.operators,
    [doc(allow(C, "*", { ArnEquals: { "iot:LastWillTopic": a("topic/Wills") } }))],
    [
      [
        "ArnEquals is case-sensitive",
        C,
        "client/thing1",
        registered("thing1", { lastWillTopic: a("topic/wills") }),
        "implicit-deny",
      ],
    ],
  ),
  ...rows(
    "ARN operators",
    PAGES.operators,
    [doc(allow(C, "*"), deny(C, "*", { ArnNotLike: { "iot:LastWillTopic": a("topic/wills/*") } }))],
    [
      [
        "ArnNotLike: a will elsewhere is denied",
        C,
        "client/thing1",
        registered("thing1", { lastWillTopic: a("topic/x") }),
        "explicit-deny",
      ],
      [
        "ArnNotLike: a will under wills/ is allowed",
        C,
        "client/thing1",
        registered("thing1", { lastWillTopic: a("topic/wills/a") }),
        "allow",
      ],
      ["ArnNotLike: no will (key absent) is true: denied", C, "client/thing1", t1, "explicit-deny"],
    ],
  ),
  ...rows(
    "ARN operators",
    PAGES.operators,
    [doc(allow(C, "*", { ArnNotEquals: { "iot:LastWillTopic": a("topic/w") } }))],
    [
      [
        "ArnNotEquals",
        C,
        "client/thing1",
        registered("thing1", { lastWillTopic: a("topic/w") }),
        "implicit-deny",
      ],
    ],
  ),

  // --- Set operators (IAM: single- vs multi-valued context keys) ----------------------------
  ...rows(
    "set operators",
    PAGES.multiValued,
    [
      publishIf({
        "ForAllValues:StringEquals": {
          "iot:Certificate.Subject.OrganizationalUnit.List": ["A", "B"],
        },
      }),
    ],
    [
      [
        "ForAllValues: every value in the set",
        P,
        "topic/t",
        registered("t", { certificate: certificate({ OrganizationalUnit: ["A", "B"] }) }),
        "allow",
      ],
      [
        "ForAllValues: one value outside",
        P,
        "topic/t",
        registered("t", { certificate: certificate({ OrganizationalUnit: ["A", "C"] }) }),
        "implicit-deny",
      ],
      ["ForAllValues: an absent key is true", P, "topic/t", t1, "allow"],
    ],
  ),
  ...rows(
    "set operators",
    PAGES.multiValued,
    [
      publishIf({
        "ForAnyValue:StringLike": { "iot:Certificate.Subject.OrganizationalUnit.List": "Ops-*" },
      }),
    ],
    [
      [
        "ForAnyValue: one value matches",
        P,
        "topic/t",
        registered("t", { certificate: certificate({ OrganizationalUnit: ["Dev", "Ops-1"] }) }),
        "allow",
      ],
      ["ForAnyValue: an absent key is false", P, "topic/t", t1, "implicit-deny"],
    ],
  ),
  ...rows(
    "set operators",
    PAGES.multiValued,
    [
      publishIf({
        "ForAllValues:StringNotEquals": {
          "iot:Certificate.Subject.OrganizationalUnit.List": "Blocked",
        },
      }),
    ],
    [
      [
        "ForAllValues with a negated operator: none is Blocked",
        P,
        "topic/t",
        registered("t", { certificate: certificate({ OrganizationalUnit: ["A"] }) }),
        "allow",
      ],
      [
        "ForAllValues with a negated operator: one is Blocked",
        P,
        "topic/t",
        registered("t", { certificate: certificate({ OrganizationalUnit: ["A", "Blocked"] }) }),
        "implicit-deny",
      ],
    ],
  ),
  ...rows(
    "set operators",
    PAGES.multiValued,
    [publishIf({ "ForAnyValue:StringEquals": { "iot:ClientId": ["a", "thing1"] } })],
    [["a set operator on a single-valued key: a set of one", P, "topic/t", t1, "allow"]],
  ),

  // --- iot:ConnectAttributes (connect-policy.html, mqtt.html#connect-attribute) --------------
  ...rows(
    "connect attributes",
    PAGES.mqtt,
    [doc(allow(C, "*", { "ForAllValues:StringEquals": { "iot:ConnectAttributes": [] } }))],
    [
      ["a clean connection without will has no attributes", C, "client/thing1", t1, "allow"],
      [
        "a persistent session is PersistentConnect",
        C,
        "client/thing1",
        registered("thing1", { connectAttributes: ["PersistentConnect"] }),
        "implicit-deny",
      ],
    ],
  ),

  // --- Retained messages and wills (retained-message-policy-examples.html, iot-policy-actions.html)
  ...rows(
    "retained and will",
    PAGES.actions,
    [doc(allow([P, RP], a("topic/device/sample/configuration")))],
    [
      [
        "Publish and RetainPublish on the topic: retained publish allowed",
        RP,
        "topic/device/sample/configuration",
        t1,
        "allow",
      ],
      ["RetainPublish on another topic", RP, "topic/other", t1, "implicit-deny"],
    ],
  ),
  ...rows(
    "retained and will",
    PAGES.actions,
    [doc(allow(P, a("topic/state")), deny(RP, a("topic/state")))],
    [
      ["a Deny on RetainPublish keeps plain publishes", P, "topic/state", t1, "allow"],
      ["a Deny on RetainPublish refuses retained ones", RP, "topic/state", t1, "explicit-deny"],
    ],
  ),
  ...rows(
    "retained and will",
    PAGES.pubSub,
    [doc(allow(S, a("topicfilter/device/update")), deny(R, a("topic/device/update")))],
    [
      ["subscribe allowed while Receive is denied", S, "topicfilter/device/update", t1, "allow"],
      [
        "Receive denied on every delivery (retained ones too)",
        R,
        "topic/device/update",
        t1,
        "explicit-deny",
      ],
    ],
  ),

  // === AWS examples, verbatim =================================================================
  ...exampleRows("connect-policy", 0, [
    ["client1 connects", C, "client/client1", c1, "allow"],
    ["client2 does not", C, "client/client2", unregistered("client2"), "implicit-deny"],
  ]),
  ...exampleRows("connect-policy", 1, [
    [
      "client1 is denied even as a registered thing",
      C,
      "client/client1",
      registered("client1"),
      "explicit-deny",
    ],
    ["client2 is denied", C, "client/client2", registered("client2"), "explicit-deny"],
    ["a thing whose client id is its name connects", C, "client/thing1", t1, "allow"],
    [
      "an unregistered client with another id",
      C,
      "client/client3",
      unregistered("client3"),
      "implicit-deny",
    ],
  ]),
  ...exampleRows("connect-policy", 2, [
    [
      "PersistentConnect allowed",
      C,
      "client/x",
      unregistered("x", { connectAttributes: ["PersistentConnect"] }),
      "allow",
    ],
    ["a clean connection (no attributes) too", C, "client/x", unregistered("x"), "allow"],
    [
      "LastWill is not in the list",
      C,
      "client/x",
      unregistered("x", { connectAttributes: ["LastWill"] }),
      "implicit-deny",
    ],
  ]),
  ...exampleRows("connect-policy", 3, [
    [
      "as printed, the document lacks its closing brace: refused when the stack loads",
      C,
      "client/x",
      unregistered("x"),
      { refused: /not JSON/ },
    ],
  ]),
  ...(() => {
    const e = example("connect-policy", 3);
    return rows(
      "AWS examples verbatim",
      e.url,
      [`${e.text}\n}`],
      [
        [
          "PersistentConnect disallowed",
          C,
          "client/x",
          unregistered("x", { connectAttributes: ["PersistentConnect"] }),
          "implicit-deny",
        ],
        [
          "other features allowed (LastWill)",
          C,
          "client/x",
          unregistered("x", { connectAttributes: ["LastWill"] }),
          "allow",
        ],
        ["a clean connection allowed", C, "client/x", unregistered("x"), "allow"],
      ],
    ).map((r) => ({ ...r, name: `connect-policy #3 (closing brace added): ${r.name}` }));
  })(),
  ...exampleRows("connect-policy", 4, [
    [
      "PersistentConnect denied",
      C,
      "client/x",
      unregistered("x", { connectAttributes: ["PersistentConnect"] }),
      "explicit-deny",
    ],
    [
      "LastWill (a newer feature) allowed",
      C,
      "client/x",
      unregistered("x", { connectAttributes: ["LastWill"] }),
      "allow",
    ],
    ["no attributes allowed", C, "client/x", unregistered("x"), "allow"],
  ]),
  ...exampleRows("connect-policy", 5, [
    [
      "PersistentConnect and LastWill",
      C,
      "client/x",
      unregistered("x", { connectAttributes: ["PersistentConnect", "LastWill"] }),
      "allow",
    ],
    [
      "LastWill alone",
      C,
      "client/x",
      unregistered("x", { connectAttributes: ["LastWill"] }),
      "allow",
    ],
  ]),
  ...exampleRows("connect-policy", 6, [
    [
      "clean connect with LastWill",
      C,
      "client/x",
      unregistered("x", { connectAttributes: ["LastWill"] }),
      "allow",
    ],
    ["clean connect without", C, "client/x", unregistered("x"), "allow"],
    [
      "PersistentConnect not allowed",
      C,
      "client/x",
      unregistered("x", { connectAttributes: ["PersistentConnect", "LastWill"] }),
      "implicit-deny",
    ],
  ]),
  ...exampleRows("connect-policy", 7, [
    ["default features only", C, "client/x", unregistered("x"), "allow"],
    [
      "not LastWill",
      C,
      "client/x",
      unregistered("x", { connectAttributes: ["LastWill"] }),
      "implicit-deny",
    ],
  ]),
  ...exampleRows("connect-policy", 8, [
    [
      "only with PersistentConnect",
      C,
      "client/x",
      unregistered("x", { connectAttributes: ["PersistentConnect"] }),
      "allow",
    ],
    [
      "with PersistentConnect and anything else",
      C,
      "client/x",
      unregistered("x", { connectAttributes: ["PersistentConnect", "LastWill"] }),
      "allow",
    ],
    ["a clean connection is refused", C, "client/x", unregistered("x"), "implicit-deny"],
  ]),
  ...exampleRows("connect-policy", 9, [
    [
      "both PersistentConnect and LastWill",
      C,
      "client/x",
      unregistered("x", { connectAttributes: ["PersistentConnect", "LastWill"] }),
      "allow",
    ],
    [
      "PersistentConnect alone",
      C,
      "client/x",
      unregistered("x", { connectAttributes: ["PersistentConnect"] }),
      "explicit-deny",
    ],
    [
      "LastWill alone",
      C,
      "client/x",
      unregistered("x", { connectAttributes: ["LastWill"] }),
      "explicit-deny",
    ],
    ["neither", C, "client/x", unregistered("x"), "explicit-deny"],
  ]),
  ...exampleRows("connect-policy", 10, [
    [
      "no PersistentConnect, with LastWill",
      C,
      "client/x",
      unregistered("x", { connectAttributes: ["LastWill"] }),
      "allow",
    ],
    [
      "PersistentConnect denied",
      C,
      "client/x",
      unregistered("x", { connectAttributes: ["PersistentConnect", "LastWill"] }),
      "explicit-deny",
    ],
  ]),
  ...(
    [
      [
        11,
        [
          [
            "a will on my/lastwill/topicName",
            C,
            "client/x",
            unregistered("x", {
              lastWillTopic: a("topic/my/lastwill/topicName"),
              connectAttributes: ["LastWill"],
            }),
            "allow",
          ],
          [
            "a will elsewhere",
            C,
            "client/x",
            unregistered("x", { lastWillTopic: a("topic/other"), connectAttributes: ["LastWill"] }),
            "implicit-deny",
          ],
          ["no will", C, "client/x", unregistered("x"), "implicit-deny"],
        ],
      ],
      [
        12,
        [
          [
            "a clean connection with that will",
            C,
            "client/x",
            unregistered("x", {
              lastWillTopic: a("topic/my/lastwill/topicName"),
              connectAttributes: ["LastWill"],
            }),
            "allow",
          ],
          [
            "a persistent one is denied",
            C,
            "client/x",
            unregistered("x", {
              lastWillTopic: a("topic/my/lastwill/topicName"),
              connectAttributes: ["LastWill", "PersistentConnect"],
            }),
            "explicit-deny",
          ],
        ],
      ],
    ] as Array<[number, Row[]]>
  ).flatMap(([block, list]) => {
    // The page prints its placeholders as *region*, *account-id* and *my/lastwill/topicName*
    // (italics in the HTML); filled in as a reader would.
    const e = example("connect-policy", block);
    const filled = e.text
      .replace("*region*", "us-east-1")
      .replace("*account-id*", "123456789012")
      .replace("*my/lastwill/topicName*", "my/lastwill/topicName");
    return rows("AWS examples verbatim", e.url, [filled], list).map((r) => ({
      ...r,
      name: `connect-policy #${block} (placeholders filled): ${r.name}`,
    }));
  }),
  ...exampleRows("connect-policy", 13, [
    ["the thing connects", C, "client/thing1", t1, "allow"],
    ["and subscribes to my/topic/filter", S, "topicfilter/my/topic/filter", t1, "allow"],
    ["no other filter", S, "topicfilter/my/topic", t1, "implicit-deny"],
  ]),
  ...exampleRows("connect-policy", 14, [
    ["client1 subscribes to my/topic", S, "topicfilter/my/topic", c1, "allow"],
    ["not to my/topic/x", S, "topicfilter/my/topic/x", c1, "implicit-deny"],
  ]),
  ...exampleRows("pub-sub-policy", 0, [
    ["publish under the thing name", P, "topic/thing1/temperature", t1, "allow"],
    ["not under another thing's", P, "topic/thing2/temperature", t1, "implicit-deny"],
  ]),
  ...exampleRows("pub-sub-policy", 1, [
    ["client2 connects", C, "client/client2", unregistered("client2"), "allow"],
    ["client1 publishes under its client id", P, "topic/client1/a", c1, "allow"],
    ["client1 not under client2's", P, "topic/client2/a", c1, "implicit-deny"],
  ]),
  ...exampleRows("pub-sub-policy", 2, [
    ["subscribe to thing1/room1", S, "topicfilter/thing1/room1", t1, "allow"],
    ["receive thing1/room2", R, "topic/thing1/room2", t1, "allow"],
    ["not thing1/kitchen", S, "topicfilter/thing1/kitchen", t1, "implicit-deny"],
  ]),
  ...exampleRows("pub-sub-policy", 3, [
    ["client1 subscribes to client1/room7", S, "topicfilter/client1/room7", c1, "allow"],
    ["client1 not to client2/room7", S, "topicfilter/client2/room7", c1, "implicit-deny"],
  ]),
  ...(() => {
    // Block 4 prints two statements without their document; wrapped in one here.
    const e = example("pub-sub-policy", 4);
    const wrapped = `{"Version": "2012-10-17", "Statement": [${e.text}]}`;
    return rows(
      "AWS examples verbatim",
      e.url,
      [wrapped],
      [
        ["subscribe to a/b", S, "topicfilter/a/b", t1, "allow"],
        [
          "subscribe to a/restricted/x is denied",
          S,
          "topicfilter/a/restricted/x",
          t1,
          "explicit-deny",
        ],
        [
          "but the filter a/# is allowed, which receives a/restricted/... (the page's point)",
          S,
          "topicfilter/a/#",
          t1,
          "allow",
        ],
      ],
    ).map((r) => ({ ...r, name: `pub-sub-policy #4 (statements wrapped): ${r.name}` }));
  })(),
  ...(() => {
    const e = example("pub-sub-policy", 5);
    const wrapped = `{"Version": "2012-10-17", "Statement": [${e.text}]}`;
    return rows(
      "AWS examples verbatim",
      e.url,
      [wrapped],
      [
        ["receive a/b", R, "topic/a/b", t1, "allow"],
        ["not a/restricted/x", R, "topic/a/restricted/x", t1, "implicit-deny"],
      ],
    ).map((r) => ({ ...r, name: `pub-sub-policy #5 (statement wrapped): ${r.name}` }));
  })(),
  ...exampleRows("pub-sub-policy", 6, [
    ["subscribe to device/update", S, "topicfilter/device/update", t1, "allow"],
    ["but no message is received", R, "topic/device/update", t1, "explicit-deny"],
  ]),
  ...exampleRows("pub-sub-policy", 7, [
    ["only the string some/+/topic", S, "topicfilter/some/+/topic", t1, "allow"],
    ["not some/x/topic", S, "topicfilter/some/x/topic", t1, "implicit-deny"],
  ]),
  ...exampleRows("pub-sub-policy", 8, [
    ["some/string1/topic", S, "topicfilter/some/string1/topic", t1, "allow"],
    ["and the filter some/+/topic too (* matches +)", S, "topicfilter/some/+/topic", t1, "allow"],
  ]),
  ...exampleRows("pub-sub-policy", 9, [
    ["client1: some/+/topic only", S, "topicfilter/some/+/topic", c1, "allow"],
  ]),
  ...exampleRows("pub-sub-policy", 10, [
    ["client1: some/string2/topic", S, "topicfilter/some/string2/topic", c1, "allow"],
  ]),
  ...exampleRows("pub-sub-policy", 11, [
    ["my/othertopic", S, "topicfilter/my/othertopic", t1, "allow"],
    ["not my/#", S, "topicfilter/my/#", t1, "implicit-deny"],
  ]),
  ...exampleRows("pub-sub-policy", 12, [
    ["client1: my/topic", S, "topicfilter/my/topic", c1, "allow"],
  ]),
  ...exampleRows("pub-sub-policy", 13, [
    [
      "refused when the stack loads: ${iot:Thing.ThingName} is no IoT policy variable",
      P,
      "topic/my/topic/thing1",
      t1,
      { refused: /policy variable \$\{iot:Thing\.ThingName\} is not supported/ },
    ],
  ]),
  ...exampleRows("pub-sub-policy", 14, [
    ["client1 publishes to my/topic/client1", P, "topic/my/topic/client1", c1, "allow"],
    ["not to my/topic/client2", P, "topic/my/topic/client2", c1, "implicit-deny"],
  ]),
  ...exampleRows("pub-sub-policy", 15, [
    [
      "refused when the stack loads (${iot:Thing.ThingName})",
      P,
      "topic/thing1/bar",
      t1,
      { refused: /iot:Thing\.ThingName/ },
    ],
  ]),
  ...exampleRows("pub-sub-policy", 16, [
    ["client1/foo", P, "topic/client1/foo", c1, "allow"],
    ["client1/bar is denied", P, "topic/client1/bar", c1, "explicit-deny"],
    ["client2 connects", C, "client/client2", unregistered("client2"), "allow"],
  ]),
  ...exampleRows("pub-sub-policy", 17, [
    [
      "refused when the stack loads (${iot:Thing.ThingName})",
      S,
      "topicfilter/my/topic",
      t1,
      { refused: /iot:Thing\.ThingName/ },
    ],
  ]),
  ...exampleRows("pub-sub-policy", 18, [
    ["client1 subscribes to my/topic", S, "topicfilter/my/topic", c1, "allow"],
  ]),
  ...exampleRows("pub-sub-policy", 19, [
    [
      "publish to the provisioning topic",
      P,
      "topic/iotmonitor/provisioning/987654321098",
      c1,
      "allow",
    ],
    ["receive it", R, "topic/iotmonitor/provisioning/987654321098", c1, "allow"],
    ["subscribe to it", S, "topicfilter/iotmonitor/provisioning/987654321098", c1, "allow"],
    ["publish is not subscribe", P, "topic/iotmonitor/provisioning/1", c1, "implicit-deny"],
  ]),
  ...exampleRows("pub-sub-policy", 22, [
    ["the thing receives my/topic", R, "topic/my/topic", t1, "allow"],
    ["a non-thing client cannot connect", C, "client/client1", c1, "implicit-deny"],
  ]),
  ...exampleRows("pub-sub-policy", 23, [
    ["client1 receives my/topic", R, "topic/my/topic", c1, "allow"],
    ["not my/other", R, "topic/my/other", c1, "implicit-deny"],
  ]),
  ...exampleRows("retained-message-policy-examples", 0, [
    [
      "as printed, the document is not JSON: refused when the stack loads",
      RP,
      "topic/device/sample/configuration",
      unregistered("device1"),
      { refused: /not JSON/ },
    ],
  ]),
  ...(() => {
    // The current page prints block 0 with its braces in place; that version, here.
    const e = example("retained-message-policy-examples", 0);
    const fixed = JSON.stringify(
      doc(
        allow(["iot:Connect"], [a("client/device1")]),
        allow(["iot:Publish", "iot:RetainPublish"], [a("topic/device/sample/configuration")]),
      ),
    );
    return rows(
      "AWS examples verbatim",
      e.url,
      [fixed],
      [
        ["device1 connects", C, "client/device1", unregistered("device1"), "allow"],
        [
          "publishes the retained configuration",
          RP,
          "topic/device/sample/configuration",
          unregistered("device1"),
          "allow",
        ],
        [
          "and plainly too",
          P,
          "topic/device/sample/configuration",
          unregistered("device1"),
          "allow",
        ],
        [
          "no retained message elsewhere",
          RP,
          "topic/device/other",
          unregistered("device1"),
          "implicit-deny",
        ],
      ],
    ).map((r) => ({
      ...r,
      name: `retained-message-policy-examples #0 (braces as on the current page): ${r.name}`,
    }));
  })(),
  ...exampleRows("retained-message-policy-examples", 1, [
    [
      "connect with a will",
      C,
      "client/any",
      unregistered("any", { connectAttributes: ["LastWill"], lastWillTopic: a("topic/will") }),
      "allow",
    ],
    ["the will's topic: Publish", P, "topic/will", unregistered("any"), "allow"],
    [
      "the will's topic: RetainPublish (a retained will)",
      RP,
      "topic/will",
      unregistered("any"),
      "allow",
    ],
    [
      "a persistent session is not allowed",
      C,
      "client/any",
      unregistered("any", { connectAttributes: ["PersistentConnect"] }),
      "implicit-deny",
    ],
    [
      "a will elsewhere cannot be published",
      P,
      "topic/elsewhere",
      unregistered("any"),
      "implicit-deny",
    ],
  ]),
  ...exampleRows("retained-message-policy-examples", 2, [
    ["ListRetainedMessages on *", "iot:ListRetainedMessages", "*", unregistered("svc"), "allow"],
    [
      "GetRetainedMessage on foo",
      "iot:GetRetainedMessage",
      "topic/foo",
      unregistered("svc"),
      "allow",
    ],
    ["not on bar", "iot:GetRetainedMessage", "topic/bar", unregistered("svc"), "implicit-deny"],
  ]),
  ...exampleRows("certificate-policy-examples", 0, [
    ["publish to the certificate's id", P, `topic/${"a".repeat(64)}`, t1, "allow"],
    ["not to another id", P, `topic/${"c".repeat(64)}`, t1, "implicit-deny"],
  ]),
  ...exampleRows("certificate-policy-examples", 1, [
    [
      "client3 publishes to its certificate id",
      P,
      `topic/${"b".repeat(64)}`,
      unregistered("client3"),
      "allow",
    ],
  ]),
  ...exampleRows("certificate-policy-examples", 2, [
    ["publish to the subject's CommonName", P, "topic/thing1", t1, "allow"],
  ]),
  ...exampleRows("certificate-policy-examples", 3, [
    ["client1 publishes to its CommonName", P, "topic/client1", c1, "allow"],
    [
      "a certificate shared under another CN",
      P,
      "topic/client1",
      unregistered("client1", { certificate: certificate({ CommonName: ["shared"] }) }),
      "implicit-deny",
    ],
  ]),
  ...exampleRows("certificate-policy-examples", 4, [
    [
      "third CommonName is Administrator: admin/ allowed",
      P,
      "topic/admin/x",
      registered("thing1", {
        certificate: certificate({ CommonName: ["thing1", "ops", "Administrator"] }),
      }),
      "allow",
    ],
    ["only one CommonName: CommonName.2 does not exist", P, "topic/admin/x", t1, "implicit-deny"],
  ]),
  ...exampleRows("certificate-policy-examples", 5, [
    [
      "client2 with CommonName.2 Administrator",
      P,
      "topic/admin/y",
      unregistered("client2", {
        certificate: certificate({ CommonName: ["client2", "x", "Administrator"] }),
      }),
      "allow",
    ],
  ]),
  ...exampleRows("certificate-policy-examples", 6, [
    [
      "any CommonName is Administrator",
      P,
      "topic/admin/thing1",
      registered("thing1", {
        certificate: certificate({ CommonName: ["Administrator", "thing1"] }),
      }),
      "allow",
    ],
    ["none is", P, "topic/admin/thing1", t1, "implicit-deny"],
  ]),
  ...exampleRows("certificate-policy-examples", 7, [
    [
      "client1 with an Administrator CommonName publishes to admin",
      P,
      "topic/admin",
      unregistered("client1", {
        certificate: certificate({ CommonName: ["client1", "Administrator"] }),
      }),
      "allow",
    ],
  ]),
  ...exampleRows("thing-policy-examples", 0, [
    ["an attached thing connects", C, "client/thing1", t1, "allow"],
    ["a certificate attached to no thing does not", C, "client/client1", c1, "implicit-deny"],
  ]),
  ...exampleRows("thing-policy-examples", 1, [
    ["type and attribute match", P, "topic/device/stats", t1, "allow"],
    [
      "another thing type",
      P,
      "topic/device/stats",
      registered("thing1", { thingTypeName: "Other" }),
      "implicit-deny",
    ],
    [
      "attribute with another value",
      P,
      "topic/device/stats",
      registered("thing1", { attributes: { attributeName: "x" } }),
      "implicit-deny",
    ],
  ]),
  ...exampleRows("thing-policy-examples", 2, [
    ["a topic starting with the attribute", P, "topic/attributeValue/x", t1, "allow"],
    [
      "not associated with the thing: unresolved, access denied",
      P,
      "topic/attributeValue/x",
      registered("thing1", { clientId: "other" }),
      "implicit-deny",
    ],
  ]),
  ...(() => {
    // basic-policy-variables #0 uses the account 123451234510.
    const e = example("basic-policy-variables", 0);
    return rows(
      "AWS examples verbatim",
      e.url,
      [e.text],
      [
        [
          "connect as any client id",
          C,
          "arn:aws:iot:us-east-1:123451234510:client/100-234-3456",
          unregistered("100-234-3456"),
          "allow",
        ],
        [
          "publish to my/topic/<client id>",
          P,
          "arn:aws:iot:us-east-1:123451234510:topic/my/topic/100-234-3456",
          unregistered("100-234-3456"),
          "allow",
        ],
      ],
    ).map((r) => ({ ...r, name: `basic-policy-variables #0: ${r.name}` }));
  })(),
  ...(() => {
    const e = example("basic-policy-variables", 1);
    const wrapped = `{"Version": "2012-10-17", "Statement": [${e.text}]}`;
    return rows(
      "AWS examples verbatim",
      e.url,
      [wrapped],
      [
        [
          "subscribe to my/<client id>/topic",
          S,
          "topicfilter/my/c7/topic",
          unregistered("c7"),
          "allow",
        ],
      ],
    ).map((r) => ({ ...r, name: `basic-policy-variables #1 (statement wrapped): ${r.name}` }));
  })(),
  ...exampleRows("basic-policy-variables", 2, [
    ["clientid1 connects", C, "client/clientid1", unregistered("clientid1"), "allow"],
    ["+ cannot", C, "client/+", unregistered("+"), "implicit-deny"],
  ]),
  ...exampleRows("cert-policy-variables", 0, [
    [
      "Organization Example Corp",
      P,
      "topic/my/topic/thing1",
      registered("thing1", { certificate: certificate({ Organization: ["Example Corp"] }) }),
      "allow",
    ],
    [
      "Organization Other",
      P,
      "topic/my/topic/thing1",
      registered("thing1", { certificate: certificate({ Organization: ["Other"] }) }),
      "implicit-deny",
    ],
    // The page says the restriction is to certificates whose Organization is one of the two;
    // IAM's ForAllValues is true for an absent key (multi-valued keys page), which wins here.
    [
      "no Organization at all: ForAllValues is true (IAM), allowed",
      P,
      "topic/my/topic/thing1",
      t1,
      "allow",
    ],
  ]),
  ...exampleRows("cert-policy-variables", 1, [
    [
      "client2 from AnyCompany",
      P,
      "topic/my/topic/client2",
      unregistered("client2", { certificate: certificate({ Organization: ["AnyCompany"] }) }),
      "allow",
    ],
    [
      "AnyCompany and another organisation",
      P,
      "topic/my/topic/client2",
      unregistered("client2", { certificate: certificate({ Organization: ["AnyCompany", "X"] }) }),
      "implicit-deny",
    ],
  ]),
];
