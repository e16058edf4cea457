// Policies 8 and 10: how device certificates are issued, and that each one belongs to exactly
// one thing and carries a policy (Device Defender's shared-certificate check, at preview time).
import type {
  PolicyResource,
  ResourceValidationPolicy,
  StackValidationPolicy,
} from "@pulumi/policy";
import { normalizePolicy, PolicyDocumentError } from "../../core/iot-policy/policy";
import { grantsProvisioningTopics } from "../../core/provisioning/claim-policy";
import { TYPES, devStacksSchema, inDevStack, refersTo, str, validateType } from "./common";

export const iotCertificateFromCsr: ResourceValidationPolicy = {
  name: "iot-certificate-from-csr",
  description:
    "Outside the dev stacks, device certificates are issued from the device's CSR, so the private key never leaves the device and never lands in the stack state.",
  enforcementLevel: "advisory",
  severity: "medium",
  configSchema: devStacksSchema,
  validateResource: validateType(TYPES.iotCertificate, (props, args, report) => {
    if (inDevStack(args)) args.notApplicable("dev stack");
    if (!str(props.csr) && !str(props.certificatePem)) {
      report(
        `certificate ${args.name} is created without a csr, so AWS generates the key pair and the private key is kept in the stack state; set csr to the device's CSR (config iot-pipeline:certificateMode csr, npm run csr -- --stack <stack>)`,
      );
    }
  }),
};

const CERT_KEYS = ["arn", "id"];
const THING_KEYS = ["name", "id"];

function thingName(thing: PolicyResource): string {
  return str(thing.props.name) ?? thing.name;
}

/**
 * The resources of a list that point at a target through one property, indexed once so that a
 * fleet's thousands of attachments are not scanned again for each certificate and thing. The
 * answers are those of `refersTo` (./common) over the whole list, in the list's order: property
 * dependencies when the engine gives them, otherwise the value equal to one of the target's keys.
 */
class References {
  private readonly byUrn = new Map<string, number[]>();
  private readonly byValue = new Map<string, number[]>();

  constructor(
    private readonly from: readonly PolicyResource[],
    prop: string,
  ) {
    from.forEach((r, i) => {
      const deps = r.propertyDependencies?.[prop];
      if (deps && deps.length > 0) {
        for (const d of deps) push(this.byUrn, d.urn, i);
        return;
      }
      const value = r.props[prop];
      if (typeof value === "string" && value !== "") push(this.byValue, value, i);
    });
  }

  /** The resources that refer to `target`, in the list's order. */
  to(target: PolicyResource, keys: readonly string[]): PolicyResource[] {
    const hits = new Set(this.byUrn.get(target.urn));
    // The target's keys are read only when some value needs them, as refersTo reads them: during
    // preview they may be unknown, and reading one through the engine's proxy throws.
    if (this.byValue.size > 0) {
      for (const k of keys) {
        const value = target.props[k];
        if (typeof value !== "string") continue;
        for (const i of this.byValue.get(value) ?? []) hits.add(i);
      }
    }
    return [...hits].sort((a, b) => a - b).map((i) => this.from[i]);
  }
}

function push(map: Map<string, number[]>, key: string, i: number): void {
  const list = map.get(key);
  if (list) list.push(i);
  else map.set(key, [i]);
}

/**
 * Whether a certificate is a fleet provisioning claim: it has policies attached, and every one of
 * them grants the provisioning topics (what it may do is iot-claim-policy-provisioning-only's).
 */
function isClaim(
  cert: PolicyResource,
  attachments: readonly PolicyResource[],
  policies: readonly PolicyResource[],
): boolean {
  const attached = attachments
    .filter((a) => refersTo(a, "target", cert, CERT_KEYS))
    .flatMap((a) => policies.filter((p) => refersTo(a, "policy", p, ["name", "id"])));
  return (
    attached.length > 0 &&
    attached.every((p) => {
      // Read without the engine's proxy: an unknown document (preview) is not a claim's.
      const doc: unknown = Object.getOwnPropertyDescriptor(p.props, "policy")?.value;
      try {
        return typeof doc === "string" && grantsProvisioningTopics(normalizePolicy(doc));
      } catch (e) {
        if (!(e instanceof PolicyDocumentError)) throw e;
        return false;
      }
    })
  );
}

export const iotCertificateAttachments: StackValidationPolicy = {
  name: "iot-certificate-attachments",
  description:
    "Every IoT certificate is attached to exactly one thing and to at least one IoT policy; every thing has a certificate.",
  enforcementLevel: "mandatory",
  severity: "high",
  validateStack: (args, report) => {
    const of = (t: string) => args.resources.filter((r) => r.type === t);
    const certificates = of(TYPES.iotCertificate);
    const things = of(TYPES.iotThing);
    if (certificates.length === 0 && things.length === 0) {
      args.notApplicable("the stack has no IoT certificate or thing");
    }
    const thingAttachments = of(TYPES.iotThingPrincipalAttachment);
    const policyAttachments = of(TYPES.iotPolicyAttachment);
    // Each index is built when first needed, so a property is read no earlier than a scan would.
    let principals: References | undefined;
    let targets: References | undefined;
    let thingsOf: References | undefined;
    for (const cert of certificates) {
      principals ??= new References(thingAttachments, "principal");
      const attached = principals.to(cert, CERT_KEYS);
      const named = [...new Set(attached.map((a) => str(a.props.thing) ?? a.name))];
      if (named.length === 0 && isClaim(cert, policyAttachments, of(TYPES.iotPolicy))) {
        // A fleet provisioning claim: no thing by design (iot-claim-policy-provisioning-only).
      } else if (named.length === 0) {
        report(
          `certificate ${cert.name} is attached to no thing; attach it to its thing with an aws.iot.ThingPrincipalAttachment (principal = the certificate ARN)`,
          cert.urn,
        );
      } else if (named.length > 1) {
        report(
          `certificate ${cert.name} is attached to ${named.length} things (${named.join(", ")}); give each thing a certificate of its own (Device Defender DEVICE_CERTIFICATE_SHARED_CHECK)`,
          cert.urn,
        );
      }
      targets ??= new References(policyAttachments, "target");
      if (targets.to(cert, CERT_KEYS).length === 0) {
        report(
          `certificate ${cert.name} has no IoT policy attached, so its device cannot connect; attach the stack's IoT policy with an aws.iot.PolicyAttachment (target = the certificate ARN)`,
          cert.urn,
        );
      }
    }
    for (const thing of things) {
      thingsOf ??= new References(thingAttachments, "thing");
      if (thingsOf.to(thing, THING_KEYS).length === 0) {
        report(
          `thing ${thingName(thing)} has no certificate attached; create one for it and attach it with an aws.iot.ThingPrincipalAttachment`,
          thing.urn,
        );
      }
    }
  },
};
