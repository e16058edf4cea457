// Whether a process named in a pid file (a journal owner, a running simulate) is still alive.

/** True when a process with this pid runs (EPERM: it runs, as another user). */
export function isProcessRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
