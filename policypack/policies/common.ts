// What every policy of the pack shares: the stack seam (dev or not), type-token validation without
// @pulumi/aws, and safe readers of the engine's property bags.
import type * as Pulumi from "@pulumi/pulumi";
import type {
  PolicyConfigSchema,
  PolicyResource,
  ReportViolation,
  ResourceValidation,
  ResourceValidationArgs,
} from "@pulumi/policy";
import { DEFAULT_DEV_STACKS } from "../../core/project";

/** Resource type tokens the policies look at (the program's @pulumi/aws 7 resources). */
export const TYPES = {
  iotPolicy: "aws:iot/policy:Policy",
  iotCertificate: "aws:iot/certificate:Certificate",
  iotThing: "aws:iot/thing:Thing",
  iotPolicyAttachment: "aws:iot/policyAttachment:PolicyAttachment",
  iotThingPrincipalAttachment: "aws:iot/thingPrincipalAttachment:ThingPrincipalAttachment",
  iotTopicRule: "aws:iot/topicRule:TopicRule",
  firehose: "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream",
  kinesisAnalyticsSql: "aws:kinesis/analyticsApplication:AnalyticsApplication",
  s3Bucket: "aws:s3/bucket:Bucket",
  s3BucketV2: "aws:s3/bucketV2:BucketV2",
  s3PublicAccessBlock: "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
  s3Encryption:
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
  s3EncryptionV2:
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
  iamRole: "aws:iam/role:Role",
  iamRolePolicy: "aws:iam/rolePolicy:RolePolicy",
  iamPolicy: "aws:iam/policy:Policy",
  iamRolePolicyAttachment: "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
  iotProvisioningTemplate: "aws:iot/provisioningTemplate:ProvisioningTemplate",
  lambdaPermission: "aws:lambda/permission:Permission",
} as const;

// ---- Which stack is this? ----------------------------------------------------------------

/** The stacks treated as dev when a policy's config does not say otherwise (one definition, in core). */
export { DEFAULT_DEV_STACKS };

/**
 * The SDK is loaded only when a running pack asks for the stack: there its host has loaded it
 * already, while `npm run check` (which sets its own source) would load the pack's second copy of
 * the SDK for nothing, over a second on every check.
 */
const engineStack = (): string =>
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a synchronous, lazy load
  (require("@pulumi/pulumi") as typeof Pulumi).getStack();
let stackSource: () => string = engineStack;

/**
 * Where the policies read the stack name. In a running pack the Pulumi CLI starts the pack with
 * PULUMI_NODEJS_STACK set, which `pulumi.getStack()` reads. `npm run check` and the tests have no
 * CLI, so they set the source here; call with no argument to go back to the engine's.
 */
export function setStackNameSource(source?: () => string): void {
  stackSource = source ?? engineStack;
}

/** The stack being previewed; throws if nothing said which (a pack run outside the engine). */
export function currentStack(): string {
  const stack = stackSource();
  if (!stack) {
    throw new Error(
      "the stack name is unknown: run the pack through `pulumi preview --policy-pack policypack` or `npm run check -- --stack <name>`",
    );
  }
  return stack;
}

/** The `devStacks` option of every stack-aware policy. */
export const devStacksSchema: PolicyConfigSchema = {
  properties: {
    devStacks: {
      type: "array",
      items: { type: "string", minLength: 1 },
      default: [...DEFAULT_DEV_STACKS],
      description: "Stacks treated as dev (where the tutorial's shortcuts are tolerated).",
    },
  },
};

/** Whether the current stack is one of the policy's dev stacks (config `devStacks`). */
export function inDevStack(args: { getConfig<T extends object>(): T }): boolean {
  const { devStacks } = args.getConfig<{ devStacks?: unknown }>();
  const list = Array.isArray(devStacks)
    ? devStacks.filter((s): s is string => typeof s === "string")
    : DEFAULT_DEV_STACKS;
  return list.includes(currentStack());
}

// ---- Validation by type token --------------------------------------------------------------

/** The bag of properties the engine hands over (inputs for resources, outputs for stacks). */
export type Props = Record<string, unknown>;

/**
 * `validateResourceOfType` for a type token, so the pack needs no @pulumi/aws: other types are
 * marked not applicable, and the token is attached the way the engine's fast filter expects.
 */
export function validateType(
  token: string,
  validate: (props: Props, args: ResourceValidationArgs, report: ReportViolation) => void,
): ResourceValidation {
  const fn = (args: ResourceValidationArgs, report: ReportViolation): void => {
    if (args.type !== token) {
      args.notApplicable(`Policy only applies to resources of type '${token}'`);
    }
    validate(args.props as Props, args, report);
  };
  (fn as { __pulumiType?: string }).__pulumiType = token;
  return fn;
}

/** Like {@link validateType} for several tokens (no fast filter: the engine calls it for all). */
export function validateTypes(
  tokens: readonly string[],
  validate: (props: Props, args: ResourceValidationArgs, report: ReportViolation) => void,
): ResourceValidation {
  return (args, report) => {
    if (!tokens.includes(args.type)) {
      args.notApplicable(`Policy only applies to resources of types ${tokens.join(", ")}`);
    }
    validate(args.props as Props, args, report);
  };
}

// ---- Reading property bags ---------------------------------------------------------------

/** An object-valued property, or undefined. */
export function obj(value: unknown): Props | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Props)
    : undefined;
}

/** A list-valued property (a single object counts as a list of one), or an empty list. */
export function items(value: unknown): Props[] {
  const list = Array.isArray(value) ? value : value === undefined || value === null ? [] : [value];
  return list.map(obj).filter((v): v is Props => v !== undefined);
}

/**
 * Whether a property has a value, without reading it: during preview a value computed by another
 * resource is unknown, and reading it through the engine's proxy throws. Unknown counts as set.
 */
export function isSet(bag: Props, key: string): boolean {
  const value: unknown = Object.getOwnPropertyDescriptor(bag, key)?.value;
  return value !== undefined && value !== null && value !== "";
}

/** A string-valued property, or undefined. */
export function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** What a bucket's dependants name it by: the bucket name is its id. */
export const BUCKET_KEYS: readonly string[] = ["id", "bucket", "arn"];

/**
 * A property's value without reading it through the engine's proxy, which throws for a value
 * unknown during preview (the name of a resource not created yet); unknown reads as the sentinel.
 */
export function peek(bag: unknown, key: string): unknown {
  return typeof bag === "object" && bag !== null
    ? Object.getOwnPropertyDescriptor(bag, key)?.value
    : undefined;
}

/**
 * Whether `from.props[prop]` points at `target`. The engine's property dependencies say so even
 * when values are unknown during preview; otherwise the value must equal one of the target's
 * identifying outputs (its id, name, arn, ...).
 */
export function refersTo(
  from: PolicyResource,
  prop: string,
  target: PolicyResource,
  keys: readonly string[],
): boolean {
  const deps = from.propertyDependencies?.[prop];
  if (deps && deps.length > 0) return deps.some((d) => d.urn === target.urn);
  const value = from.props[prop];
  if (typeof value !== "string" || value === "") return false;
  return keys.some((k) => target.props[k] === value);
}
