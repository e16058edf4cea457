// How every command of the project ends: with its main's exit code; a UserError as one line,
// `<command>: <message>`, and the error's own exit code; anything else is a bug, printed with its
// stack trace, exit 1.
import { UserError } from "./errors";

/** Runs a command's main and exits the process with what it came to. */
export function runCommand(name: string, main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      if (e instanceof UserError) {
        process.stderr.write(`${name}: ${e.message}\n`);
        process.exit(e.exitCode);
      }
      process.stderr.write(`${name}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
