// The Device Shadow document rules as a conformance table: each row quotes its page of the AWS IoT
// developer guide and states what the page says must happen; the expected values are the pages',
// never read from the code. docs/shadows.md lists the same rows with these test names.
import * as assert from "node:assert/strict";
import {
  applyDelete,
  applyUpdate,
  deltaOf,
  errorDocument,
  getDocument,
  parseShadowTopic,
  parseUpdate,
  readPayload,
  ShadowError,
  type JsonObject,
  type StoredShadow,
} from "../../local/shadow/document";

const T0 = 1_700_000_000_000;
const S0 = Math.floor(T0 / 1000);

/** Reads a payload as the service does and applies it to `current`. */
function update(current: StoredShadow | undefined, body: unknown, now = T0) {
  return applyUpdate(
    current,
    parseUpdate(readPayload(Buffer.from(JSON.stringify(body)), false)),
    now,
  );
}

function rejects(f: () => unknown, code: number, message: string): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof ShadowError, `expected a ShadowError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.equal(e.message, message);
    return true;
  });
}

function shadowWith(state: JsonObject, version = 1): StoredShadow {
  return { ...update(undefined, { state }, T0).next, version };
}

describe("Device Shadow documents (conformance table, docs/shadows.md)", () => {
  describe("device-shadow-data-flow.html / device-shadow-document.html", () => {
    it("update: 'Creates a shadow if it doesn't exist' with version 1, and /accepted echoes the request's fields with their metadata", () => {
      const out = update(undefined, { state: { reported: { color: "red" } }, clientToken: "t1" });
      assert.deepEqual(out.accepted, {
        state: { reported: { color: "red" } },
        metadata: { reported: { color: { timestamp: S0 } } },
        version: 1,
        timestamp: S0,
        clientToken: "t1",
      });
    });

    it("update: 'Updates affect only the fields specified' (desired and reported merge field by field)", () => {
      let s = update(undefined, { state: { desired: { color: "red", power: "on" } } }).next;
      s = update(s, { state: { desired: { power: "off" }, reported: { color: "blue" } } }).next;
      assert.deepEqual(s.state, {
        desired: { color: "red", power: "off" },
        reported: { color: "blue" },
      });
      assert.equal(s.version, 2);
    });

    it("update: 'Fields with a value of null are removed from the shadow document'", () => {
      const s0 = shadowWith({ desired: { engine: "ON", color: "red" } });
      const s = update(s0, { state: { desired: { engine: null } } }).next;
      assert.deepEqual(s.state, { desired: { color: "red" } });
      assert.deepEqual(Object.keys(s.metadata.desired ?? {}), ["color"]);
    });

    it("update: 'If an update causes the desired or reported properties to become null, it is removed'", () => {
      const s0 = shadowWith({ desired: { color: "RED" }, reported: { color: "GREEN" } });
      const s = update(s0, { state: { reported: { color: "red" }, desired: null } }).next;
      assert.deepEqual(s.state, { reported: { color: "red" } });
      assert.equal(s.metadata.desired, undefined);
    });

    it("update: 'Setting the device's shadow state to null does not delete the shadow. The shadow version will be incremented'", () => {
      const s0 = shadowWith({ desired: { a: 1 } }, 3);
      const out = update(s0, { state: null });
      assert.deepEqual(out.next.state, {});
      assert.equal(out.next.version, 4);
      assert.equal(out.next.deletedAt, undefined);
    });

    it("update: arrays 'an update to an array replaces the whole array'", () => {
      const s0 = shadowWith({ desired: { colors: ["RED", "GREEN", "BLUE"] } });
      const s = update(s0, { state: { desired: { colors: ["RED"] } } }).next;
      assert.deepEqual(s.state, { desired: { colors: ["RED"] } });
    });

    it("update: 'Arrays can't have null values ... will be rejected'", () => {
      rejects(
        () => update(undefined, { state: { desired: { colors: [null, "RED", "GREEN"] } } }),
        400,
        "State contains an invalid node",
      );
    });

    it("update: metadata 'timestamps, in Epoch time, for each attribute', nested objects per field", () => {
      const s = update(undefined, { state: { desired: { color: { r: 10 }, engine: "ON" } } }).next;
      assert.deepEqual(s.metadata, {
        desired: { color: { r: { timestamp: S0 } }, engine: { timestamp: S0 } },
      });
    });

    it("update: 'Only JSON fields in the desired and reported sections are stored' (other top-level fields ignored)", () => {
      const s = update(undefined, { state: { reported: { a: 1 } }, note: "ignored" }).next;
      assert.deepEqual(s.state, { reported: { a: 1 } });
    });
  });

  describe("delta (device-shadow-document.html Delta state; device-shadow-mqtt.html /update/delta)", () => {
    it("delta: the page's example (desired not in reported included; reported-only fields not)", () => {
      assert.deepEqual(
        deltaOf({
          desired: { color: "RED", state: "STOP" },
          reported: { color: "GREEN", engine: "ON" },
        }),
        { color: "RED", state: "STOP" },
      );
    });

    it("delta: 'When nested objects differ, the delta contains the path all the way to the root'", () => {
      assert.deepEqual(
        deltaOf({
          desired: { lights: { color: { r: 255, g: 255, b: 255 } } },
          reported: { lights: { color: { r: 255, g: 0, b: 255 } } },
        }),
        { lights: { color: { g: 255 } } },
      );
    });

    it("delta: 'If an array in the desired section doesn't match ... the entire desired array is copied'", () => {
      assert.deepEqual(deltaOf({ desired: { c: [1, 2, 3] }, reported: { c: [1, 2] } }), {
        c: [1, 2, 3],
      });
      assert.equal(deltaOf({ desired: { c: [1, 2] }, reported: { c: [1, 2] } }), undefined);
    });

    it("delta: 'Attributes that do not differ ... are not included' (no /update/delta when nothing differs)", () => {
      const s0 = shadowWith({ desired: { power: "on" } });
      const out = update(s0, { state: { reported: { power: "on" } } });
      assert.equal(out.delta, undefined);
    });

    it("delta: 'It contains all of these attributes, regardless of whether these attributes were contained in the current update message'", () => {
      const s0 = shadowWith({ desired: { a: 1, b: 2 } });
      const out = update(s0, { state: { desired: { c: 3 } }, clientToken: "k" });
      assert.deepEqual(out.delta, {
        state: { a: 1, b: 2, c: 3 },
        metadata: { a: { timestamp: S0 }, b: { timestamp: S0 }, c: { timestamp: S0 } },
        version: 2,
        timestamp: S0,
        clientToken: "k",
      });
    });

    it("delta: 'If an attribute is deleted from the reported section but still exists in the desired section, it is included'", () => {
      const s0 = shadowWith({ desired: { a: 1 }, reported: { a: 1 } });
      const out = update(s0, { state: { reported: { a: null } } });
      assert.deepEqual(out.delta?.state, { a: 1 });
    });

    it("delta: 'The delta contains metadata, and its values are equal to the metadata in the desired field'", () => {
      const s0 = update(undefined, { state: { desired: { a: 1 } } }, T0).next;
      const later = update(s0, { state: { reported: { a: 2 } } }, T0 + 5000);
      assert.deepEqual(later.delta?.metadata, { a: { timestamp: S0 } });
    });
  });

  describe("versions and client tokens (device-shadow-data-flow.html Optimistic locking; device-shadow-document.html)", () => {
    it("version: 'rejects the request with an HTTP 409 conflict response code if the current version ... does not match' ('Version conflict')", () => {
      const s0 = shadowWith({ desired: { colors: ["RED", "GREEN", "BLUE"] } }, 10);
      rejects(
        () => update(s0, { state: { desired: { colors: ["BLUE"] } }, version: 9 }),
        409,
        "Version conflict",
      );
      const ok = update(s0, { state: { desired: { colors: ["BLUE"] } }, version: 10 });
      assert.deepEqual(ok.next.state, { desired: { colors: ["BLUE"] } });
      assert.equal(ok.next.version, 11);
    });

    it("version: 'A client can bypass version matching by not including a version'", () => {
      const s0 = shadowWith({ desired: { a: 1 } }, 10);
      assert.equal(update(s0, { state: { desired: { a: 2 } } }).next.version, 11);
    });

    it("version: a 409 error response 'code', 'message', 'clientToken' as the page's example", () => {
      const doc = errorDocument(new ShadowError(409, "Version conflict"), T0, "426bfd96");
      assert.deepEqual(doc, {
        code: 409,
        message: "Version conflict",
        timestamp: S0,
        clientToken: "426bfd96",
      });
    });

    it("delete: 'deleting a shadow does not reset its version number to 0'; /delete/accepted is {version, timestamp}", () => {
      const s0 = shadowWith({ reported: { a: 1 } }, 4);
      const del = applyDelete(s0, T0, undefined);
      assert.deepEqual(del.accepted, { version: 4, timestamp: S0 });
      assert.equal(update(del.next, { state: { reported: { a: 2 } } }, T0 + 1000).next.version, 5);
    });

    it("delete: 'deleted for more than 48 hours, the version number of a new device shadow document ... will be 0'", () => {
      const del = applyDelete(shadowWith({ reported: { a: 1 } }, 4), T0, undefined);
      const again = update(del.next, { state: { reported: { a: 2 } } }, T0 + 49 * 3600_000);
      assert.equal(again.next.version, 1);
    });

    it("clientToken: echoed in /accepted, /delta, /documents and errors ('Present only if a client token was used')", () => {
      const out = update(undefined, { state: { desired: { a: 1 } }, clientToken: "abc" });
      assert.equal(out.accepted.clientToken, "abc");
      assert.equal(out.delta?.clientToken, "abc");
      assert.equal(out.documents.clientToken, "abc");
      const none = update(undefined, { state: { desired: { a: 1 } } });
      assert.equal("clientToken" in none.accepted, false);
    });

    it("clientToken: 'longer than 64 bytes causes a 400 (Bad Request) response and an Invalid clientToken error message'", () => {
      rejects(
        () => update(undefined, { state: { desired: {} }, clientToken: "x".repeat(65) }),
        400,
        "Invalid clientToken",
      );
      assert.doesNotThrow(() =>
        update(undefined, { state: { desired: {} }, clientToken: "x".repeat(64) }),
      );
    });

    it("/documents: previous and current state, metadata and version (/documents response state document)", () => {
      const s0 = update(undefined, { state: { reported: { a: 1 } } }, T0).next;
      const out = update(s0, { state: { reported: { a: 2 } } }, T0 + 2000);
      assert.deepEqual(out.documents, {
        previous: {
          state: { reported: { a: 1 } },
          metadata: { reported: { a: { timestamp: S0 } } },
          version: 1,
        },
        current: {
          state: { reported: { a: 2 } },
          metadata: { reported: { a: { timestamp: S0 + 2 } } },
          version: 2,
        },
        timestamp: S0 + 2,
      });
    });

    it("/get: 'a complete shadow document ... including metadata' and 'any delta between the desired and reported states'", () => {
      const s = shadowWith(
        { desired: { color: "RED", state: "STOP" }, reported: { color: "GREEN", engine: "ON" } },
        17,
      );
      assert.deepEqual(getDocument(s, T0, "g1"), {
        state: {
          desired: { color: "RED", state: "STOP" },
          reported: { color: "GREEN", engine: "ON" },
          delta: { color: "RED", state: "STOP" },
        },
        metadata: {
          desired: { color: { timestamp: S0 }, state: { timestamp: S0 } },
          reported: { color: { timestamp: S0 }, engine: { timestamp: S0 } },
          delta: { color: { timestamp: S0 }, state: { timestamp: S0 } },
        },
        version: 17,
        timestamp: S0,
        clientToken: "g1",
      });
    });
  });

  describe("error messages (device-shadow-error-messages.html)", () => {
    const bad = (payload: string | Buffer) => () =>
      parseUpdate(readPayload(Buffer.isBuffer(payload) ? payload : Buffer.from(payload), false));

    it("400 'Invalid JSON'", () => rejects(bad("{not json"), 400, "Invalid JSON"));
    it("400 'Missing required node: state'", () =>
      rejects(bad('{"clientToken":"a"}'), 400, "Missing required node: state"));
    it("400 'State node must be an object'", () =>
      rejects(bad('{"state":"on"}'), 400, "State node must be an object"));
    it("400 'Desired node must be an object'", () =>
      rejects(bad('{"state":{"desired":[1]}}'), 400, "Desired node must be an object"));
    it("400 'Reported node must be an object'", () =>
      rejects(bad('{"state":{"reported":5}}'), 400, "Reported node must be an object"));
    it("400 'Invalid version'", () =>
      rejects(bad('{"state":{},"version":"7"}'), 400, "Invalid version"));
    it("400 'Invalid clientToken'", () =>
      rejects(bad('{"state":{},"clientToken":17}'), 400, "Invalid clientToken"));
    it("400 'JSON contains too many levels of nesting; maximum is 6'", () => {
      const six = { a: { b: { c: { d: { e: { f: 1 } } } } } };
      assert.doesNotThrow(bad(JSON.stringify({ state: { desired: six } })));
      rejects(
        bad(JSON.stringify({ state: { desired: { z: six } } })),
        400,
        "JSON contains too many levels of nesting; maximum is 6",
      );
    });
    it("400 'State contains an invalid node'", () =>
      rejects(bad('{"state":{"delta":{"a":1}}}'), 400, "State contains an invalid node"));
    it("409 'Version conflict'", () =>
      rejects(
        () => update(undefined, { state: { desired: { a: 1 } }, version: 3 }),
        409,
        "Version conflict",
      ));
    it("413 'The payload exceeds the maximum size allowed' (diagnosing-shadows.html: 8 KB of desired and reported)", () => {
      const big = "x".repeat(8 * 1024);
      rejects(
        () => update(undefined, { state: { reported: { big } } }),
        413,
        "The payload exceeds the maximum size allowed",
      );
      // Metadata does not count: a state just under 8 KB is accepted.
      assert.doesNotThrow(() =>
        update(undefined, { state: { reported: { big: big.slice(0, 8100) } } }),
      );
    });
    it("413 counts the merged shadow, not only the request", () => {
      const s0 = update(undefined, { state: { reported: { a: "x".repeat(5000) } } }).next;
      rejects(
        () => update(s0, { state: { desired: { b: "y".repeat(5000) } } }),
        413,
        "The payload exceeds the maximum size allowed",
      );
    });
    it("415 'Unsupported documented encoding; supported encoding is UTF-8'", () =>
      rejects(
        bad(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])),
        415,
        "Unsupported documented encoding; supported encoding is UTF-8",
      ));
  });

  describe("topics (device-shadow-mqtt.html)", () => {
    const rows: Array<[string, ReturnType<typeof parseShadowTopic>]> = [
      ["$aws/things/t1/shadow/get", { thingName: "t1", shadowName: undefined, operation: "get" }],
      [
        "$aws/things/t1/shadow/get/accepted",
        { thingName: "t1", shadowName: undefined, operation: "get", response: "accepted" },
      ],
      [
        "$aws/things/t1/shadow/get/rejected",
        { thingName: "t1", shadowName: undefined, operation: "get", response: "rejected" },
      ],
      [
        "$aws/things/t1/shadow/update",
        { thingName: "t1", shadowName: undefined, operation: "update" },
      ],
      [
        "$aws/things/t1/shadow/update/accepted",
        { thingName: "t1", shadowName: undefined, operation: "update", response: "accepted" },
      ],
      [
        "$aws/things/t1/shadow/update/rejected",
        { thingName: "t1", shadowName: undefined, operation: "update", response: "rejected" },
      ],
      [
        "$aws/things/t1/shadow/update/delta",
        { thingName: "t1", shadowName: undefined, operation: "update", response: "delta" },
      ],
      [
        "$aws/things/t1/shadow/update/documents",
        { thingName: "t1", shadowName: undefined, operation: "update", response: "documents" },
      ],
      [
        "$aws/things/t1/shadow/delete",
        { thingName: "t1", shadowName: undefined, operation: "delete" },
      ],
      [
        "$aws/things/t1/shadow/delete/accepted",
        { thingName: "t1", shadowName: undefined, operation: "delete", response: "accepted" },
      ],
      [
        "$aws/things/t1/shadow/delete/rejected",
        { thingName: "t1", shadowName: undefined, operation: "delete", response: "rejected" },
      ],
      [
        "$aws/things/t1/shadow/name/cfg/update",
        { thingName: "t1", shadowName: "cfg", operation: "update" },
      ],
      [
        "$aws/things/t1/shadow/name/cfg/update/delta",
        { thingName: "t1", shadowName: "cfg", operation: "update", response: "delta" },
      ],
      ["$aws/things/t1/shadow/get/delta", undefined],
      ["$aws/things/t1/shadow/name/bad name/get", undefined],
      ["$aws/things/t1/shadow/name/" + "n".repeat(65) + "/get", undefined],
      ["things/t1/shadow/get", undefined],
    ];
    for (const [topic, expected] of rows) {
      it(`topic ${topic.length > 60 ? topic.slice(0, 60) + "…" : topic}`, () =>
        assert.deepEqual(parseShadowTopic(topic), expected));
    }
  });
});
