// Fleet provisioning by claim: the MQTT API's topics, and the template names they carry.
// ---- The MQTT API's topics ------------------------------------------------------------------
// https://docs.aws.amazon.com/iot/latest/developerguide/fleet-provision-api.html

/** CreateKeysAndCertificate's request topic, less `/<payload-format>`. */
export const CREATE_KEYS_TOPIC = "$aws/certificates/create";
/** CreateCertificateFromCsr's request topic, less `/<payload-format>`. */
export const CREATE_FROM_CSR_TOPIC = "$aws/certificates/create-from-csr";

/** RegisterThing's request topic for a template, less `/<payload-format>`. */
export function registerThingTopic(templateName: string): string {
  return `$aws/provisioning-templates/${templateName}/provision`;
}

export type ProvisioningApi =
  "CreateKeysAndCertificate" | "CreateCertificateFromCsr" | "RegisterThing";
/** The page's `payload-format`: the API answers in the format the request topic names. */
export type PayloadFormat = "json" | "cbor";

/** A topic of the MQTT API, read back: which call, which format, request or which response. */
export interface ProvisioningTopic {
  readonly api: ProvisioningApi;
  /** RegisterThing only. */
  readonly templateName?: string;
  readonly format: PayloadFormat;
  readonly kind: "request" | "accepted" | "rejected";
}

/** Provisioning template names: 1-36 of letters, digits, `_` and `-` (CreateProvisioningTemplate). */
export const TEMPLATE_NAME_PART = "[0-9A-Za-z_-]{1,36}";
const TEMPLATE_NAME = new RegExp(`^${TEMPLATE_NAME_PART}$`);

/** The API topic a name is, or undefined for any other topic. */
export function parseProvisioningTopic(topic: string): ProvisioningTopic | undefined {
  const m =
    /^\$aws\/(?:certificates\/(create|create-from-csr)|provisioning-templates\/([^/]+)\/provision)\/(json|cbor)(?:\/(accepted|rejected))?$/.exec(
      topic,
    );
  if (m === null) return undefined;
  const [, certificates, templateName, format, response] = m;
  const kind = (response ?? "request") as ProvisioningTopic["kind"];
  if (certificates !== undefined) {
    const api = certificates === "create" ? "CreateKeysAndCertificate" : "CreateCertificateFromCsr";
    return { api, format: format as PayloadFormat, kind };
  }
  return { api: "RegisterThing", templateName, format: format as PayloadFormat, kind };
}

/** The request topic of a call in a format. */
export function requestTopic(
  api: ProvisioningApi,
  format: PayloadFormat,
  templateName = "",
): string {
  const base =
    api === "CreateKeysAndCertificate"
      ? CREATE_KEYS_TOPIC
      : api === "CreateCertificateFromCsr"
        ? CREATE_FROM_CSR_TOPIC
        : registerThingTopic(templateName);
  return `${base}/${format}`;
}

/** The error payload every call answers on `.../rejected` (the page's error payload). */
export interface ProvisioningErrorPayload {
  readonly statusCode: number;
  readonly errorCode: string;
  readonly errorMessage: string;
}

/** Whether a template name is one AWS accepts (1-36 of letters, digits, `_`, `-`). */
export function isTemplateName(name: string): boolean {
  return TEMPLATE_NAME.test(name);
}
