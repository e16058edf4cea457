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

/** A command line that cannot run (an unknown option, a value out of range); the message says how to fix it. */
export class UsageError extends UserError {}

/** A config value that cannot be used; the message is one line naming the key and what is allowed. */
export class ConfigError extends UserError {}

/** `config iot-pipeline:<key> = <value> is invalid: <allowed>`, thrown as a ConfigError. */
export function invalidConfig(key: string, value: unknown, allowed: string): never {
  throw new ConfigError(
    `config ${PROJECT}:${key} = ${JSON.stringify(value)} is invalid: ${allowed}`,
  );
}

/** A problem with the machine a command runs on: a full disk, a port in use, a missing permission. */
export class EnvironmentError extends UserError {}

/** What a system error code means to someone who has to fix it. */
const SYSTEM_PROBLEMS: Readonly<Record<string, string>> = {
  ENOSPC: "the disk is full; free some space and run again",
  EDQUOT: "the disk quota is used up; free some space and run again",
  EROFS: "the file system is read-only; use a writable --state-dir",
  EACCES: "permission denied; check the owner and mode, or use another --state-dir",
  EPERM: "operation not permitted; check the owner and mode, or use another --state-dir",
  EMFILE: "too many open files; raise the limit (ulimit -n) or run fewer devices",
  ENFILE: "too many open files on the system; close some programs or run fewer devices",
  EADDRINUSE: "the port is in use by another program; choose another --port, or leave it out",
  EISDIR: "a folder is where a file should be; move it away and run again",
  ENOTDIR: "a file is where a folder should be; move it away and run again",
};

/** True for the error codes of a full disk or used-up quota. */
export function isOutOfSpace(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOSPC" || code === "EDQUOT";
}

/**
 * A system error (one with an errno code such as ENOSPC) as one EnvironmentError line naming what
 * was being done, the path and what to do; undefined for any other error, which stays a bug.
 */
export function environmentError(e: unknown, doing?: string): EnvironmentError | undefined {
  const err = e as NodeJS.ErrnoException | undefined;
  const code = err?.code;
  if (typeof code !== "string" || !(code in SYSTEM_PROBLEMS)) return undefined;
  const where = err?.path ? ` (${err.path})` : "";
  return new EnvironmentError(
    `${doing ?? (err?.syscall ? `${err.syscall} failed` : "a system call failed")}${where}: ${code}: ${SYSTEM_PROBLEMS[code]}`,
  );
}
