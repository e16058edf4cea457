// The Device Shadow service at the embedded broker: answers every publish to a shadow request topic
// (get, update, delete of classic and named shadows) on the response topics of
// https://docs.aws.amazon.com/iot/latest/developerguide/device-shadow-mqtt.html, with the document
// rules of document.ts. An accepted change is on disk (store.ts) before anything is published and
// before the request's PUBACK. Responses go out through the injected `publish`, which delivers to
// every subscriber the IoT policy lets receive them, as AWS IoT's own messages are.
import * as path from "node:path";
import type { SummaryRow } from "../../core/display";
import type { BrokerHooks, ClientIdentity } from "../broker/broker";
import {
  applyDelete,
  applyUpdate,
  clientTokenForError,
  clientTokenOf,
  ERRORS,
  errorDocument,
  exists,
  getDocument,
  parseShadowTopic,
  parseUpdate,
  readPayload,
  ShadowError,
  shadowTopicPrefix,
  type JsonObject,
  type ShadowTopic,
  type StoredShadow,
} from "./document";
import {
  DEFAULT_SHADOW_STORE_LIMITS,
  ShadowStore,
  type ShadowStoreCounts,
  type ShadowStoreLimits,
} from "./store";

export interface ShadowLimits extends ShadowStoreLimits {
  /**
   * "The Device Shadow service will generate this error message [429] when there are more than 10
   * in-flight requests on a single connection" (device-shadow-error-messages.html).
   */
  readonly maxInFlightPerConnection: number;
  /**
   * Named shadows per thing. The pages name no quota for it (the shadow size is the limit); the
   * local service holds a bound so that one device cannot fill the state folder.
   */
  readonly maxNamedShadowsPerThing: number;
}

export const DEFAULT_SHADOW_LIMITS: ShadowLimits = {
  ...DEFAULT_SHADOW_STORE_LIMITS,
  maxInFlightPerConnection: 10,
  maxNamedShadowsPerThing: 100,
};

export interface ShadowStats {
  gets: number;
  updates: number;
  deletes: number;
  /** Rejections by code (`409`, `413`...), as published on `/rejected`. */
  rejected: Map<number, number>;
  /** Responses the broker could not hand on (stopped, a subscriber's session failed). */
  publishFailures: number;
  /** Changes refused because the store could not write them (no PUBACK: the device retries). */
  storeFailures: number;
}

export interface LocalShadowServiceOptions {
  readonly stack: string;
  /** The shadows live in `<stateDir>/shadows/<stack>.jsonl`. */
  readonly stateDir: string;
  /** Delivers a response as AWS IoT publishes it (in the pipeline: broker.publishAsService). */
  readonly publish: (topic: string, payload: Buffer) => Promise<void>;
  readonly log?: (line: string) => void;
  /** Epoch ms (tests). */
  readonly now?: () => number;
  readonly limits?: Partial<ShadowLimits>;
}

function counted(map: Map<number, number>, key: number): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

export class LocalShadowService {
  readonly stats: ShadowStats = {
    gets: 0,
    updates: 0,
    deletes: 0,
    rejected: new Map(),
    publishFailures: 0,
    storeFailures: 0,
  };
  readonly store: ShadowStore;
  readonly limits: ShadowLimits;
  private readonly log: (line: string) => void;
  private readonly now: () => number;
  private readonly inFlight = new Map<string, number>();
  /** Each shadow's requests run one after another (read, merge, write), in arrival order. */
  private readonly queues = new Map<string, Promise<void>>();

  constructor(private readonly opts: LocalShadowServiceOptions) {
    this.limits = { ...DEFAULT_SHADOW_LIMITS, ...opts.limits };
    this.log = opts.log ?? (() => undefined);
    this.now = opts.now ?? (() => Date.now());
    this.store = ShadowStore.open(
      path.join(opts.stateDir, "shadows"),
      opts.stack,
      this.log,
      this.limits,
    );
  }

  /** Whether a publish is a shadow request this service answers (instead of the rule engine). */
  handles(topic: string): boolean {
    const t = parseShadowTopic(topic);
    return t !== undefined && t.response === undefined;
  }

  /**
   * The broker's hooks with the reserved topics' rule: the response topics are "Subscribe" only
   * (reserved-topics.html, Shadow topics): only the service publishes there.
   */
  hooks(base: BrokerHooks): BrokerHooks {
    return {
      ...base,
      authorizePublish: (id, topic, retain) =>
        parseShadowTopic(topic)?.response !== undefined
          ? `${topic} is a response topic of the Device Shadow service: only AWS IoT publishes there`
          : base.authorizePublish?.(id, topic, retain),
    };
  }

  /** The shadow as it is now (get_thing_shadow(), the CLI): the /get document, or undefined. */
  read(thingName: string, shadowName?: string): JsonObject | undefined {
    const s = this.store.get(thingName, shadowName);
    return exists(s) ? getDocument(s, this.now(), undefined) : undefined;
  }

  /**
   * Answers one request; resolves once any change is on disk and the responses are handed to the
   * broker (the PUBACK waits for it). Rejects only when the change could not be written: no PUBACK,
   * and the device sends it again.
   */
  async onPublish(id: ClientIdentity, topic: string, payload: Buffer): Promise<void> {
    const t = parseShadowTopic(topic);
    if (t === undefined || t.response !== undefined) return;
    const busy = this.inFlight.get(id.clientId) ?? 0;
    if (busy >= this.limits.maxInFlightPerConnection) {
      await this.reject(id, t, ERRORS.tooManyRequests(), undefined);
      return;
    }
    this.inFlight.set(id.clientId, busy + 1);
    try {
      await this.inOrder(`${t.thingName}/${t.shadowName ?? ""}`, () => this.handle(id, t, payload));
    } finally {
      const left = (this.inFlight.get(id.clientId) ?? 1) - 1;
      if (left === 0) this.inFlight.delete(id.clientId);
      else this.inFlight.set(id.clientId, left);
    }
  }

  private inOrder(key: string, run: () => Promise<void>): Promise<void> {
    const before = this.queues.get(key) ?? Promise.resolve();
    const mine = before.then(run);
    const tail = mine.catch(() => undefined);
    this.queues.set(key, tail);
    void tail.then(() => {
      if (this.queues.get(key) === tail) this.queues.delete(key);
    });
    return mine;
  }

  private async handle(id: ClientIdentity, t: ShadowTopic, payload: Buffer): Promise<void> {
    const prefix = shadowTopicPrefix(t.thingName, t.shadowName);
    const name = t.shadowName ?? t.thingName;
    let request: unknown;
    try {
      // /get and /delete take "an empty message"; a JSON one may carry a clientToken.
      request = readPayload(payload, t.operation !== "update");
      const now = this.now();
      const current = this.store.get(t.thingName, t.shadowName);
      switch (t.operation) {
        case "get": {
          const token = clientTokenOf(request);
          if (!exists(current)) throw ERRORS.noShadow(name);
          this.stats.gets++;
          await this.send(`${prefix}/get/accepted`, getDocument(current, now, token));
          return;
        }
        case "delete": {
          const token = clientTokenOf(request);
          if (!exists(current)) throw ERRORS.noShadow(name);
          const { next, accepted } = applyDelete(current, now, token);
          await this.write(t, next);
          this.stats.deletes++;
          await this.send(`${prefix}/delete/accepted`, accepted);
          return;
        }
        case "update": {
          const req = parseUpdate(request);
          this.checkRoom(t, current);
          const out = applyUpdate(current, req, now);
          await this.write(t, out.next);
          this.stats.updates++;
          await this.send(`${prefix}/update/accepted`, out.accepted);
          if (out.delta !== undefined) await this.send(`${prefix}/update/delta`, out.delta);
          await this.send(`${prefix}/update/documents`, out.documents);
          return;
        }
      }
    } catch (e) {
      if (e instanceof ShadowError) {
        await this.reject(id, t, e, clientTokenForError(request));
        return;
      }
      // The store could not write it: AWS's 500, and no PUBACK, so that the device retries.
      await this.reject(id, t, ERRORS.internal((e as Error).message), clientTokenForError(request));
      throw e;
    }
  }

  /** The local bounds on new shadows: named shadows per thing, shadows in the store. */
  private checkRoom(t: ShadowTopic, current: StoredShadow | undefined): void {
    if (current !== undefined) return;
    if (
      t.shadowName !== undefined &&
      this.store.namedCount(t.thingName) >= this.limits.maxNamedShadowsPerThing
    ) {
      throw ERRORS.tooLarge(
        `thing ${t.thingName} has ${this.limits.maxNamedShadowsPerThing} named shadows, the local service's bound (shadow.maxNamedShadowsPerThing)`,
      );
    }
    if (!this.store.hasRoomFor(t.thingName, t.shadowName)) {
      throw ERRORS.tooLarge(
        `the local shadow store holds its maximum of ${this.limits.maxShadows} shadows`,
      );
    }
  }

  private async write(t: ShadowTopic, next: StoredShadow): Promise<void> {
    try {
      await this.store.put(t.thingName, t.shadowName, next);
    } catch (e) {
      this.stats.storeFailures++;
      throw e;
    }
  }

  private async reject(
    id: ClientIdentity,
    t: ShadowTopic,
    e: ShadowError,
    clientToken: string | undefined,
  ): Promise<void> {
    counted(this.stats.rejected, e.code);
    const topic = `${shadowTopicPrefix(t.thingName, t.shadowName)}/${t.operation}/rejected`;
    this.log(
      `shadow: rejected ${t.operation} of ${t.thingName}${t.shadowName === undefined ? "" : `/${t.shadowName}`} from ${id.clientId}: ${e.code} ${e.message}${e.detail === undefined ? "" : ` (${e.detail})`}`,
    );
    await this.send(topic, errorDocument(e, this.now(), clientToken));
  }

  private async send(topic: string, body: JsonObject): Promise<void> {
    try {
      await this.opts.publish(topic, Buffer.from(JSON.stringify(body)));
    } catch (e) {
      this.stats.publishFailures++;
      this.log(`shadow: could not publish ${topic}: ${(e as Error).message}`);
    }
  }

  get storeCounts(): ShadowStoreCounts {
    return this.store.counts;
  }

  /** Counts for the end of a run; none when no device used a shadow and none is stored. */
  summary(): SummaryRow[] {
    const used =
      this.stats.gets + this.stats.updates + this.stats.deletes + this.stats.rejected.size > 0;
    if (!used && this.store.size === 0 && this.stats.storeFailures === 0) return [];
    const rejected = [...this.stats.rejected].map(([k, n]) => `${k} ${n}`).join(", ");
    const c = this.store.counts;
    return [
      {
        label: "shadow: gets / updates / deletes accepted",
        value: `${this.stats.gets} / ${this.stats.updates} / ${this.stats.deletes}`,
      },
      { label: "shadow: rejected (by code)", value: rejected === "" ? 0 : rejected },
      { label: "shadow: shadows stored", value: this.store.size },
      {
        label: "shadow: failed writes / responses not published",
        value: `${c.failedWrites} / ${this.stats.publishFailures}`,
      },
      {
        label: "shadow: journal rewrites (failed) / torn tails cut / unreadable lines",
        value: `${c.compactions} (${c.failedCompactions}) / ${c.tornTailsCut} / ${c.unreadable}`,
      },
    ];
  }
}
