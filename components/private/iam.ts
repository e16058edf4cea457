// IAM documents for the pipeline's service roles: one trust policy per service principal and
// one allow statement per grant, so that every role can do exactly one job on named resources.

/** An IAM policy statement; Action and Resource are always explicit lists here. */
export interface IamStatement {
  Sid?: string;
  Effect: "Allow";
  Action: string[];
  Resource: string[];
  /** IAM condition block (operator → key → values), e.g. an `s3:prefix` limit on ListBucket. */
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface IamDocument {
  Version: "2012-10-17";
  Statement: IamStatement[];
}

/** The service principals this project's roles trust. */
export type ServicePrincipal =
  "iot.amazonaws.com" | "firehose.amazonaws.com" | "kinesisanalytics.amazonaws.com";

/**
 * The condition key each service's documentation uses to tie a role to one account: Firehose's
 * role examples name the account as `sts:ExternalId`; IoT and Managed Flink document the global
 * `aws:SourceAccount` for confused-deputy prevention.
 */
export function accountConditionKey(service: ServicePrincipal): string {
  return service === "firehose.amazonaws.com" ? "sts:ExternalId" : "aws:SourceAccount";
}

/**
 * A trust policy that lets one AWS service assume the role. `sourceAccount` adds the
 * confused-deputy guard AWS recommends: only that account's resources may use the role.
 */
export function trustPolicy(service: ServicePrincipal, sourceAccount?: string): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      {
        Effect: "Allow",
        Principal: { Service: service },
        Action: "sts:AssumeRole",
        ...(sourceAccount === undefined
          ? {}
          : { Condition: { StringEquals: { [accountConditionKey(service)]: sourceAccount } } }),
      },
    ],
  });
}

/**
 * Whether a resource ARN is scoped to one named resource. The only `*` allowed is a trailing
 * `/*` (the objects of one bucket) or `:log-stream:*` (the streams of one log group, which the
 * service names itself); anything else, `*` included, is a wildcard.
 */
export function isScopedResource(arn: string): boolean {
  const base = arn.replace(/(\/\*|:log-stream:\*)$/, "");
  return arn !== "*" && !base.includes("*") && !base.includes("?");
}

/** A permissions document of allow statements; refuses wildcards so a mistake cannot widen a grant. */
export function allowDocument(...statements: IamStatement[]): string {
  for (const s of statements) {
    const where = s.Sid ?? "a statement";
    for (const a of s.Action) {
      if (/[*?]/.test(a)) throw new Error(`IAM action ${a} in ${where} is a wildcard`);
    }
    for (const r of s.Resource) {
      if (!isScopedResource(r)) throw new Error(`IAM resource ${r} in ${where} is a wildcard`);
    }
  }
  const doc: IamDocument = { Version: "2012-10-17", Statement: statements };
  return JSON.stringify(doc);
}
