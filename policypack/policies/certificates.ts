// Policies 8 and 10: how device certificates are issued, and that each one belongs to exactly
// one thing and carries a policy (Device Defender's shared-certificate check, at preview time).
import type {
  PolicyResource,
  ResourceValidationPolicy,
  StackValidationPolicy,
} from "@pulumi/policy";
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
    for (const cert of certificates) {
      const attached = thingAttachments.filter((a) => refersTo(a, "principal", cert, CERT_KEYS));
      const named = [...new Set(attached.map((a) => str(a.props.thing) ?? a.name))];
      if (named.length === 0) {
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
      if (!policyAttachments.some((a) => refersTo(a, "target", cert, CERT_KEYS))) {
        report(
          `certificate ${cert.name} has no IoT policy attached, so its device cannot connect; attach the stack's IoT policy with an aws.iot.PolicyAttachment (target = the certificate ARN)`,
          cert.urn,
        );
      }
    }
    for (const thing of things) {
      if (!thingAttachments.some((a) => refersTo(a, "thing", thing, THING_KEYS))) {
        report(
          `thing ${thingName(thing)} has no certificate attached; create one for it and attach it with an aws.iot.ThingPrincipalAttachment`,
          thing.urn,
        );
      }
    }
  },
};
