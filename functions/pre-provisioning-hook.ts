// The pre-provisioning hook, as the Lambda function AWS IoT calls before every RegisterThing of the
// stack's template: it allows only the serials the stack's config lists (core/provisioning.ts, the
// same rule the local broker runs). The list ships beside the code in the function's archive.
import * as fs from "node:fs";
import * as path from "node:path";
import {
  ALLOWED_SERIALS_FILE,
  preProvisioningDecision,
  type PreProvisioningHookResponse,
} from "../core/provisioning";

let allowed: readonly string[] | undefined;

/** The serials of the archive's list, read once per cold start; unreadable fails closed (none). */
function allowedSerials(): readonly string[] {
  if (allowed === undefined) {
    try {
      const list: unknown = JSON.parse(
        fs.readFileSync(path.join(__dirname, ALLOWED_SERIALS_FILE), "utf8"),
      );
      allowed = Array.isArray(list) ? list.filter((s): s is string => typeof s === "string") : [];
    } catch (e) {
      console.error(`pre-provisioning hook: cannot read ${ALLOWED_SERIALS_FILE}: ${String(e)}`);
      allowed = [];
    }
  }
  return allowed;
}

/** The handler AWS IoT invokes with the page's input object; it returns the page's output object. */
export async function handler(event: unknown): Promise<PreProvisioningHookResponse> {
  const decision = preProvisioningDecision(event, allowedSerials());
  // One line per decision in the function's log group: who was refused, and why.
  console.log(
    JSON.stringify({ allowProvisioning: decision.allowProvisioning, reason: decision.reason }),
  );
  return { allowProvisioning: decision.allowProvisioning };
}
