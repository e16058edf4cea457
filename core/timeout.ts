// One way to bound a wait: a promise that some other party may never settle (an MQTT answer, a
// PUBACK, a connection) raced against a timer that is cleared either way.

/** Resolves or rejects as `p` does, or rejects with `Error(message)` after `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
