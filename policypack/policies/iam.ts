// Policy 6: the pipeline's IAM permission policies name exact actions on exact resources.
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { iamWildcardFindings } from "../../core/iam-policy-audit";
import { PolicyDocumentError } from "../../core/iot-policy";
import { TYPES, items, str, validateTypes } from "./common";

export const iamRolePolicyNoWildcards: ResourceValidationPolicy = {
  name: "iam-role-policy-no-wildcards",
  description:
    "IAM permission policies (role inline policies, aws.iam.RolePolicy, aws.iam.Policy) allow no wildcard action or resource and no NotAction/NotResource.",
  enforcementLevel: "mandatory",
  severity: "high",
  validateResource: validateTypes(
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
          for (const f of iamWildcardFindings(doc)) report(`${where}: ${f.message}`);
        } catch (e) {
          if (!(e instanceof PolicyDocumentError)) throw e;
          report(`${where}: the document is not a valid IAM policy (${e.message}); fix it`);
        }
      }
    },
  ),
};
