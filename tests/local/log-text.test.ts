// What a client chooses (its client id, a topic) reaches the pipeline's log escaped: a NUL, a
// newline or an ESC in a client id cannot cut, forge or recolour a log line.
import * as assert from "node:assert/strict";
import { loadStackConfig } from "../../core/stack-config";
import { printable } from "../../local/pipeline/log-text";
import { startLocalPipeline } from "../../local/pipeline/pipeline";
import { tempDir } from "../helpers/temp";
import { until } from "../helpers/wait";
import { RawClient } from "../broker/raw-mqtt";

describe("log lines: client-chosen text escaped (local/pipeline/log-text)", function () {
  this.timeout(60_000);

  it("writes control characters, line separators and bidi overrides as \\uXXXX, and leaves the rest", () => {
    assert.equal(
      printable("a\u0000b\nc\u001b[31md\u007f\u0085"),
      "a\\u0000b\\u000ac\\u001b[31md\\u007f\\u0085",
    );
    assert.equal(printable("x\u2028y\u202ez\u2066"), "x\\u2028y\\u202ez\\u2066");
    assert.equal(printable("é SeattleStoreTemp/1 ✓ 温度"), "é SeattleStoreTemp/1 ✓ 温度");
  });

  it("a CONNECT whose client id holds a NUL and a newline is logged on one line, escaped", async () => {
    const config = loadStackConfig("dev");
    const thing = config.things[0].name;
    const lines: string[] = [];
    const p = await startLocalPipeline(config, {
      stateDir: tempDir("log-text"),
      log: (l) => lines.push(l),
      // dev's policy lets any client id connect (as on AWS): the stricter mode makes the refusal.
      broker: { requireThingClientId: true },
    });
    try {
      const c = await RawClient.open(p.port, p.credentialsFor(thing));
      const forged = `${thing}\u0000\nbroker: ${thing} connected from 127.0.0.1:1`;
      assert.equal(await c.connect(forged), 2, "refused: not the certificate's thing");
      c.end();
      await until(() => lines.some((l) => l.includes("refused CONNECT")), "the refusal's line");
    } finally {
      await p.stop();
    }
    const refusal = lines.filter((l) => l.includes("refused CONNECT"));
    assert.equal(refusal.length, 1);
    assert.ok(refusal[0].startsWith(`broker: refused CONNECT of ${thing}\\u0000\\u000abroker: `));
    for (const l of lines) assert.doesNotMatch(l, /[\u0000-\u001f\u007f]/, l);
  });
});
