// Policy 23: a Lambda function's resource policy lets AWS IoT invoke it only from one rule (or
// provisioning template) of this account: "If you add a permission for an AWS IoT principal
// without providing the source-arn or source-account, any AWS account that creates a rule with
// your Lambda action can trigger rules to invoke your Lambda function from AWS IoT"
// (https://docs.aws.amazon.com/iot/latest/developerguide/lambda-rule-action.html; the
// pre-provisioning hook's page asks the same of its template).
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { TYPES, isSet, str, validateType } from "./common";

/** One IoT rule or provisioning template, named without wildcards, in one account. */
const IOT_SOURCE =
  /^arn:aws[a-z-]*:iot:[a-z0-9-]+:(\d{12}):(rule|provisioningtemplate)\/[A-Za-z0-9_-]+$/;

export const lambdaPermissionIotScoped: ResourceValidationPolicy = {
  name: "lambda-permission-iot-scoped",
  description:
    "A Lambda permission for iot.amazonaws.com names, as sourceArn, one topic rule or provisioning template (no wildcard) and, as sourceAccount, that ARN's account.",
  enforcementLevel: "mandatory",
  severity: "high",
  validateResource: validateType(TYPES.lambdaPermission, (props, args, report) => {
    if (str(props.principal) !== "iot.amazonaws.com") return;
    const fn = str(props.function) ?? args.name;
    // A value another resource computes is unknown during preview; the check runs at `pulumi up`.
    if (!isSet(props, "sourceArn")) {
      report(
        `Lambda permission for ${fn} lets iot.amazonaws.com invoke it from any rule of any account; set sourceArn to the rule's ARN (arn:aws:iot:<region>:<account>:rule/<name>) and sourceAccount`,
      );
      return;
    }
    const arn = str(props.sourceArn);
    const match = arn === undefined ? undefined : IOT_SOURCE.exec(arn);
    if (arn !== undefined && match === null) {
      report(
        `Lambda permission for ${fn} has sourceArn ${arn}, which is not one IoT rule or provisioning template; name the rule itself (arn:aws:iot:<region>:<account>:rule/<name>), no wildcard`,
      );
    }
    if (!isSet(props, "sourceAccount")) {
      report(`Lambda permission for ${fn} has no sourceAccount; set it to the rule's account`);
      return;
    }
    const account = str(props.sourceAccount);
    if (account !== undefined && match !== null && match !== undefined && match[1] !== account) {
      report(
        `Lambda permission for ${fn} has sourceAccount ${account} but its sourceArn is in account ${match[1]}; set sourceAccount to the rule's account`,
      );
    }
  }),
};
