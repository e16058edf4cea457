// Policies 6 and 19: the pipeline's IAM permission policies name exact actions on exact resources,
// in the ARN form IAM sees in the request.
import type { ResourceValidation, ResourceValidationPolicy } from "@pulumi/policy";
import {
  iamWildcardFindings,
  logGroupArnFindings,
  type IamFinding,
} from "../../core/iam/policy-audit";
import { PolicyDocumentError } from "../../core/iot-policy/policy";
import { TYPES, items, str, validateTypes } from "./common";

/** A validation over every IAM permission document of a resource, reported with where it is. */
function permissionDocuments(findings: (doc: unknown) => IamFinding[]): ResourceValidation {
  return validateTypes(
    [TYPES.iamRolePolicy, TYPES.iamPolicy, TYPES.iamRole],
    (props, args, report) => {
      const documents: { where: string; doc: unknown }[] =
        args.type === TYPES.iamRole
          ? items(props.inlinePolicies).map((p, i) => ({
              where: `inline policy ${str(p.name) ?? i} of role ${str(props.name) ?? args.name}`,
              doc: p.policy,
            }))
          : [{ where: `policy ${str(props.name) ?? args.name}`, doc: props.policy }];
      for (const { where, doc } of documents) {
        if (doc === undefined || doc === "") continue;
        try {
          for (const f of findings(doc)) report(`${where}: ${f.message}`);
        } catch (e) {
          if (!(e instanceof PolicyDocumentError)) throw e;
          report(`${where}: the document is not a valid IAM policy (${e.message}); fix it`);
        }
      }
    },
  );
}

export const iamRolePolicyNoWildcards: ResourceValidationPolicy = {
  name: "iam-role-policy-no-wildcards",
  description:
    "IAM permission policies (role inline policies, aws.iam.RolePolicy, aws.iam.Policy) allow no wildcard action or resource and no NotAction/NotResource.",
  enforcementLevel: "mandatory",
  severity: "high",
  validateResource: permissionDocuments(iamWildcardFindings),
};

export const iamRolePolicyLogGroupArn: ResourceValidationPolicy = {
  name: "iam-role-policy-log-group-arn",
  description:
    "IAM permission policies grant CloudWatch Logs group-level actions on the log group's ARN with the trailing :* (log-group:NAME:*), the form IAM sees in the request, not on the :*-less ARN the provider exports.",
  enforcementLevel: "mandatory",
  severity: "high",
  validateResource: permissionDocuments(logGroupArnFindings),
};
