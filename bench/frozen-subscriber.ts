// The soak's frozen subscriber: a process of its own that subscribes to everything as the console
// identity and prints "subscribed"; the soak then stops it with SIGSTOP, as Ctrl-Z would.
import mqtt from "mqtt";
import { readCredentials } from "../local/identity/ca";

async function main(): Promise<void> {
  const [url, pkiDir] = process.argv.slice(2);
  const client = await mqtt.connectAsync(url, {
    ...readCredentials(pkiDir, "console"),
    clientId: "console",
    reconnectPeriod: 0,
    // No keep-alive of its own: the broker's slow-subscriber bounds, not its keep-alive timer
    // (which would close a stopped client after 90 s), are what the soak exercises.
    keepalive: 0,
    protocolVersion: 4,
  });
  client.on("error", () => undefined);
  await client.subscribeAsync("#", { qos: 1 });
  process.stdout.write("subscribed\n");
}

main().catch((e: unknown) => {
  process.stderr.write(`frozen subscriber: ${String(e)}\n`);
  process.exit(1);
});
