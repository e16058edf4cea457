// The pre-provisioning hook, as the Lambda function AWS IoT calls before every RegisterThing of the
// stack's template: it allows only the serials the stack's config lists (when it lists any) and,
// unless the stack allows re-provisioning, only serials whose thing does not exist yet
// (core/provisioning/hook.ts, the same rule the local broker runs). Its config ships beside the code in
// the function's archive; whether the thing exists it asks AWS IoT (DescribeThing).
import * as fs from "node:fs";
import * as path from "node:path";
import {
  HOOK_CONFIG_FILE,
  hookSerial,
  hookThingName,
  parseHookRule,
  preProvisioningDecision,
  type HookRule,
  type PreProvisioningHookResponse,
} from "../core/provisioning/hook";
import { withTimeout } from "../core/timeout";

let rule: HookRule | null | undefined;

/** The archive's rule, read once per cold start; unreadable is null, and every request refused. */
function hookRule(): HookRule | null {
  if (rule === undefined) {
    try {
      rule =
        parseHookRule(
          JSON.parse(fs.readFileSync(path.join(__dirname, HOOK_CONFIG_FILE), "utf8")),
        ) ?? null;
      if (rule === null) console.error(`pre-provisioning hook: ${HOOK_CONFIG_FILE} is not a rule`);
    } catch (e) {
      console.error(`pre-provisioning hook: cannot read ${HOOK_CONFIG_FILE}: ${String(e)}`);
      rule = null;
    }
  }
  return rule;
}

/** What the function uses of the AWS SDK for JavaScript v3 that the Node.js runtime provides. */
interface IotSdk {
  IoTClient: new (config: object) => { send(command: unknown): Promise<unknown> };
  DescribeThingCommand: new (input: { thingName: string }) => unknown;
}

let client: { send(command: unknown): Promise<unknown> } | undefined;

/**
 * Whether the thing exists: DescribeThing answers it, or fails with ResourceNotFoundException
 * (https://docs.aws.amazon.com/iot/latest/apireference/API_DescribeThing.html). The SDK is the
 * runtime's ("Lambda Node.js runtimes include the AWS SDK for JavaScript v3"), not bundled: the
 * bundle leaves `@aws-sdk/*` to it. Any other failure throws, and the caller refuses.
 */
async function thingExists(thingName: string): Promise<boolean> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the runtime provides it
  const sdk = require("@aws-sdk/client-iot") as IotSdk;
  client ??= new sdk.IoTClient({});
  try {
    await client.send(new sdk.DescribeThingCommand({ thingName }));
    return true;
  } catch (e) {
    if ((e as { name?: string }).name === "ResourceNotFoundException") return false;
    throw e;
  }
}

/** The hook "must finish running and return within 5 seconds": leave a second for the rest. */
const DESCRIBE_TIMEOUT_MS = 4_000;

function refuse(reason: string): PreProvisioningHookResponse {
  console.log(JSON.stringify({ allowProvisioning: false, reason }));
  return { allowProvisioning: false };
}

/** The handler AWS IoT invokes with the page's input object; it returns the page's output object. */
export async function handler(event: unknown): Promise<PreProvisioningHookResponse> {
  const r = hookRule();
  if (r === null) return refuse(`the function's ${HOOK_CONFIG_FILE} is missing or invalid`);
  let decision = preProvisioningDecision(event, r, false);
  const serial = hookSerial(event);
  // Only a request the list lets through costs a DescribeThing call.
  if (decision.allowProvisioning && serial !== undefined && !r.allowReprovisioning) {
    const thingName = hookThingName(r, serial);
    let exists: boolean;
    try {
      exists = await withTimeout(
        thingExists(thingName),
        DESCRIBE_TIMEOUT_MS,
        `DescribeThing took more than ${DESCRIBE_TIMEOUT_MS} ms`,
      );
    } catch (e) {
      return refuse(`cannot tell whether thing ${thingName} exists (${String(e)}): refused`);
    }
    decision = preProvisioningDecision(event, r, exists);
  }
  // One line per decision in the function's log group: who was refused, and why.
  console.log(
    JSON.stringify({ allowProvisioning: decision.allowProvisioning, reason: decision.reason }),
  );
  return { allowProvisioning: decision.allowProvisioning };
}
