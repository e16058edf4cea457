// One device's identity: an active X.509 certificate (AWS-generated, or issued from the device's
// own CSR so the private key never leaves it), the stack's IoT policy attached to it, and the
// certificate attached to its thing.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

export interface DeviceIdentityArgs {
  /** The thing this identity belongs to. */
  readonly thingName: pulumi.Input<string>;
  /** The IoT policy attached to the certificate. */
  readonly policyName: pulumi.Input<string>;
  /**
   * The device's certificate signing request (PEM). When set, AWS issues the certificate from it
   * and the private key stays on the device.
   * @default undefined: AWS generates the key pair and the private key lands in the stack state
   */
  readonly csrPem?: pulumi.Input<string>;
}

export class DeviceIdentity extends pulumi.ComponentResource {
  /** The device certificate. */
  readonly certificate: aws.iot.Certificate;
  /** The certificate's ARN, the principal the attachments name. */
  readonly certificateArn: pulumi.Output<string>;
  /** The certificate (PEM) the device presents. */
  readonly certificatePem: pulumi.Output<string>;
  /** The private key (secret), only when AWS generated the key pair; undefined in CSR mode. */
  readonly privateKey?: pulumi.Output<string>;

  constructor(name: string, args: DeviceIdentityArgs, opts?: pulumi.ComponentResourceOptions) {
    super("iot-pipeline:identity:DeviceIdentity", name, {}, opts);
    const parent = { parent: this };

    this.certificate = new aws.iot.Certificate(
      `${name}-cert`,
      args.csrPem === undefined ? { active: true } : { active: true, csr: args.csrPem },
      parent,
    );
    this.certificateArn = this.certificate.arn;
    this.certificatePem = this.certificate.certificatePem;
    if (args.csrPem === undefined) {
      // The provider already marks privateKey secret; say so here too so that no refactoring
      // of the outputs can ever export it in the clear.
      this.privateKey = pulumi.secret(this.certificate.privateKey);
    }

    new aws.iot.PolicyAttachment(
      `${name}-policy`,
      { policy: args.policyName, target: this.certificate.arn },
      parent,
    );
    new aws.iot.ThingPrincipalAttachment(
      `${name}-thing`,
      { thing: args.thingName, principal: this.certificate.arn },
      parent,
    );

    this.registerOutputs({
      certificateArn: this.certificateArn,
      certificatePem: this.certificatePem,
      ...(this.privateKey === undefined ? {} : { privateKey: this.privateKey }),
    });
  }
}
