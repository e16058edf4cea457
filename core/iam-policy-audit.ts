// Least-privilege audit of the pipeline's IAM permission policies (the roles IoT and Firehose
// assume): wildcard actions and resources. Plain functions, no Pulumi.
import { describeStatement, normalizePolicyGrammar } from "./iot-policy";

/** An action pattern with a wildcard: `*`, `s3:*`, `firehose:Put*`, `kinesis:?utRecord`. */
export function isWildcardAction(action: string): boolean {
  return /[*?]/.test(action);
}

/**
 * A resource pattern that is not scoped to named resources: `*`, an ARN with a wildcard in its
 * partition, service, region or account, or whose resource name starts with a wildcard
 * (`deliverystream/*`, `log-group:*`, `arn:aws:s3:::*`). A wildcard below a named resource
 * (`arn:aws:s3:::my-bucket/*`, a named log group's `:*` streams) is scoped.
 */
export function isWildcardResource(resource: string): boolean {
  if (resource === "*") return true;
  const parts = resource.split(":");
  if (parts[0] !== "arn" || parts.length < 6) return /[*?]/.test(resource);
  if (parts.slice(1, 5).some((p) => /[*?]/.test(p))) return true;
  const name = parts.slice(5).join(":");
  // S3 ARNs have no resource type: the name starts with the bucket.
  if (parts[2] === "s3") return /^[*?]/.test(name);
  const typed = /^[a-z0-9-]+[/:](.*)$/i.exec(name);
  return /^[*?]/.test(typed ? typed[1] : name);
}

/** One wildcard finding, with a message naming the statement and what to change. */
export interface IamFinding {
  readonly statement: string;
  readonly message: string;
}

/** Allow statements of an IAM document that use a wildcard action or resource, NotAction or NotResource. */
export function iamWildcardFindings(doc: unknown): IamFinding[] {
  const findings: IamFinding[] = [];
  for (const s of normalizePolicyGrammar(doc)) {
    if (s.effect !== "Allow") continue;
    const where = describeStatement(s);
    if (s.notActions) {
      findings.push({
        statement: where,
        message: `${where} is an Allow with NotAction, which grants every other action; list the actions the service needs in Action`,
      });
    }
    if (s.notResources) {
      findings.push({
        statement: where,
        message: `${where} is an Allow with NotResource, which grants every other resource; list the resource ARNs in Resource`,
      });
    }
    const actions = (s.actions ?? []).filter(isWildcardAction);
    if (actions.length > 0) {
      findings.push({
        statement: where,
        message: `${where} allows the wildcard action ${actions.join(", ")}; name the exact actions the service needs (for example firehose:PutRecord, firehose:PutRecordBatch)`,
      });
    }
    const resources = (s.resources ?? []).filter(isWildcardResource);
    if (resources.length > 0) {
      findings.push({
        statement: where,
        message: `${where} allows ${(s.actions ?? ["its actions"]).join(", ")} on the wildcard resource ${resources.join(", ")}; name the ARN of the one stream, bucket or log group the role needs`,
      });
    }
  }
  return findings;
}
