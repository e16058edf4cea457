// Fleet provisioning by claim, in the cloud: the provisioning template devices register through,
// its provisioning role (AWSIoTThingsRegistration), the claim certificate with its policy limited
// to the provisioning topics, and optionally the pre-provisioning hook (a Lambda function that
// allows only the stack's serials). Devices register themselves, so the stack's size does not grow
// with the fleet.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { claimPolicy } from "../../core/provisioning/claim-policy";
import { HOOK_CONFIG_FILE, hookRequired } from "../../core/provisioning/hook";
import { provisioningTemplateBody, type TemplateSpec } from "../../core/provisioning/template";
import type { ProvisioningConfig } from "../../core/stack-config";
import { functionLogGroup, functionLogStatements } from "../private/function-logging";
import { serviceRole, serviceRoleWithAttachments } from "../private/iam";
import { HOOK_HANDLER, HOOK_RUNTIME, hookBundle } from "./hook-code";

/**
 * The managed policy the provisioning role holds: "attaching the AWSIoTThingsRegistration managed
 * policy to an IAM role (called the provisioning role) that trusts the AWS IoT service principal"
 * (https://docs.aws.amazon.com/iot/latest/developerguide/provision-wo-cert.html#claim-based).
 */
export const THINGS_REGISTRATION_POLICY_ARN =
  "arn:aws:iam::aws:policy/service-role/AWSIoTThingsRegistration";

/** The hook's payload version, the one the pages document (provision-wo-cert.html#hooks-cli-instruc). */
export const HOOK_PAYLOAD_VERSION = "2020-04-01";

export interface FleetProvisioningArgs {
  /** The stack's provisioning config (template, claim policy, group, prefix, hook's serials). */
  readonly provisioning: ProvisioningConfig;
  /** What the template registers for each device (thing type, group, attributes, device policy). */
  readonly template: TemplateSpec;
  /** Resources the template names, which must exist before it is used (type, group, policy). */
  readonly registeredAfter?: pulumi.Input<pulumi.Resource>[];
}

export class FleetProvisioning extends pulumi.ComponentResource {
  readonly template: aws.iot.ProvisioningTemplate;
  readonly templateName: pulumi.Output<string>;
  /** The claim certificate devices ship with; its key is a secret. */
  readonly claimCertificate: aws.iot.Certificate;
  readonly claimCertificatePem: pulumi.Output<string>;
  readonly claimPrivateKey: pulumi.Output<string>;
  readonly claimPolicy: aws.iot.Policy;
  /** The pre-provisioning hook: when the config lists serials, or refuses re-provisioning. */
  readonly hook?: aws.lambda.Function;

  constructor(name: string, args: FleetProvisioningArgs, opts?: pulumi.ComponentResourceOptions) {
    super("iot-pipeline:provisioning:FleetProvisioning", name, {}, opts);
    const parent = { parent: this };
    const p = args.provisioning;
    const partition = aws.getPartitionOutput({}, parent).partition;
    const region = aws.getRegionOutput({}, parent).region;
    const accountId = aws.getCallerIdentityOutput({}, parent).accountId;

    const provisioningRole = serviceRoleWithAttachments(
      `${name}-role`,
      {
        service: "iot.amazonaws.com",
        accountId,
        managedPolicyArns: [THINGS_REGISTRATION_POLICY_ARN],
      },
      this,
    );

    let hookTarget: pulumi.Output<string> | undefined;
    if (hookRequired(p)) {
      const functionName = `${p.templateName}-pre-provisioning-hook`;
      const logGroup = functionLogGroup(`${name}-hook-logs`, functionName, parent);
      const hookRole = serviceRole(
        `${name}-hook-role`,
        {
          service: "lambda.amazonaws.com",
          accountId,
          statements: pulumi
            .all([logGroup.arn, partition, region, accountId])
            .apply(([arn, pt, r, a]) => [
              ...functionLogStatements(arn),
              // DescribeThing authorizes on the thing (resource type `thing`,
              // arn:${Partition}:iot:${Region}:${Account}:thing/${ThingName}: Service Authorization
              // Reference, https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsiot.html),
              // and the hook asks only about the fleet's own things.
              ...(p.allowReprovisioning
                ? []
                : [
                    {
                      Sid: "DescribeFleetThings",
                      Effect: "Allow" as const,
                      Action: ["iot:DescribeThing"],
                      Resource: [`arn:${pt}:iot:${r}:${a}:thing/${p.thingPrefix}*`],
                    },
                  ]),
            ]),
        },
        this,
      );
      this.hook = new aws.lambda.Function(
        `${name}-hook`,
        {
          name: functionName,
          runtime: HOOK_RUNTIME,
          handler: HOOK_HANDLER,
          role: hookRole.role.arn,
          // The page: the hook "must finish running and return within 5 seconds".
          timeout: 5,
          memorySize: 128,
          code: new pulumi.asset.AssetArchive({
            "index.js": new pulumi.asset.StringAsset(hookBundle()),
            [HOOK_CONFIG_FILE]: new pulumi.asset.StringAsset(
              JSON.stringify({
                allowedSerials: p.allowedSerials ?? null,
                thingPrefix: p.thingPrefix,
                allowReprovisioning: p.allowReprovisioning,
              }) + "\n",
            ),
          }),
        },
        { parent: this, dependsOn: [logGroup, hookRole.grant] },
      );
      hookTarget = this.hook.arn;
    }

    const body = JSON.stringify(provisioningTemplateBody(args.template));
    this.template = new aws.iot.ProvisioningTemplate(
      `${name}-template`,
      {
        name: p.templateName,
        description: `Fleet provisioning by claim: ${args.template.thingPrefix}<SerialNumber> in ${args.template.group}`,
        enabled: true,
        type: "FLEET_PROVISIONING",
        provisioningRoleArn: provisioningRole.role.arn,
        templateBody: body,
        ...(hookTarget === undefined
          ? {}
          : {
              preProvisioningHook: { targetArn: hookTarget, payloadVersion: HOOK_PAYLOAD_VERSION },
            }),
      },
      { parent: this, dependsOn: [...provisioningRole.ready, ...(args.registeredAfter ?? [])] },
    );
    this.templateName = this.template.name;

    if (this.hook !== undefined) {
      // AWS IoT calls the hook through the function's resource policy; the pages ask for the
      // source ARN or account in it (confused deputy prevention): this template alone may invoke.
      new aws.lambda.Permission(
        `${name}-hook-invoke`,
        {
          action: "lambda:InvokeFunction",
          function: this.hook.name,
          principal: "iot.amazonaws.com",
          sourceArn: this.template.arn,
          sourceAccount: accountId,
        },
        parent,
      );
    }

    this.claimPolicy = new aws.iot.Policy(
      `${name}-claim-policy`,
      {
        name: p.claimPolicyName,
        policy: pulumi
          .all([partition, region, accountId])
          .apply(([pt, r, a]) =>
            JSON.stringify(
              claimPolicy({ partition: pt, region: r, accountId: a }, p.templateName, p.createKeys),
            ),
          ),
      },
      parent,
    );
    // AWS generates the claim's key pair: the key is shared by every device at manufacture, and
    // its only power is the claim policy's provisioning topics.
    this.claimCertificate = new aws.iot.Certificate(`${name}-claim`, { active: true }, parent);
    this.claimCertificatePem = pulumi.unsecret(this.claimCertificate.certificatePem);
    this.claimPrivateKey = pulumi.secret(this.claimCertificate.privateKey);
    new aws.iot.PolicyAttachment(
      `${name}-claim-policy-attachment`,
      { policy: this.claimPolicy.name, target: this.claimCertificate.arn },
      parent,
    );

    this.registerOutputs({
      templateName: this.templateName,
      claimCertificatePem: this.claimCertificatePem,
      claimPolicyName: this.claimPolicy.name,
    });
  }
}
