// The pre-provisioning hook's code as Lambda runs it: functions/pre-provisioning-hook.ts and the
// core module it imports, bundled the way every function of the stack is
// (components/private/function-code.ts).
import * as path from "node:path";
import { PROJECT_DIR } from "../../core/project";
import { FUNCTION_HANDLER, FUNCTION_RUNTIME, functionBundle } from "../private/function-code";

/** The handler's source file. */
export const HOOK_SOURCE = path.join(PROJECT_DIR, "functions", "pre-provisioning-hook.ts");
/** The Lambda runtime the bundle targets. */
export const HOOK_RUNTIME = FUNCTION_RUNTIME;
/** `index.handler`: the bundle is the archive's index.js. */
export const HOOK_HANDLER = FUNCTION_HANDLER;

/** The bundle's text (cached: a program run builds it once). */
export function hookBundle(): string {
  return functionBundle(HOOK_SOURCE);
}
