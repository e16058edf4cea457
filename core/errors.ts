// The errors a user can act on: one line saying what was wrong and what to do, and the exit code
// the command line ends with. Every command maps errors to exit codes by this type alone.
import { PROJECT } from "./project";

/** A problem with the user's input or environment; its message is one actionable line. */
export class UserError extends Error {
  /** The process exit code a command ends with: 2, usage or environment (as `npm run check` documents). */
  readonly exitCode: number = 2;

  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A config value that cannot be used; the message is one line naming the key and what is allowed. */
export class ConfigError extends UserError {}

/** `config iot-pipeline:<key> = <value> is invalid: <allowed>`, thrown as a ConfigError. */
export function invalidConfig(key: string, value: unknown, allowed: string): never {
  throw new ConfigError(
    `config ${PROJECT}:${key} = ${JSON.stringify(value)} is invalid: ${allowed}`,
  );
}
