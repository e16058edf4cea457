// The pack's entry point for `pulumi preview --policy-pack policypack`: it only constructs the
// pack (which starts the analyzer server), so nothing else may import this file.
import { PolicyPack } from "@pulumi/policy";
import { PACK_ENFORCEMENT_LEVEL, PACK_NAME, policies } from "./policies";

new PolicyPack(PACK_NAME, { policies, enforcementLevel: PACK_ENFORCEMENT_LEVEL });
