// Shared subscriptions as AWS IoT Core has them, for MQTT 3.1.1 and MQTT 5 alike
// (https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html, "Shared subscriptions"):
// "clients subscribe to a shared subscription's topic filter as follows:
// $share/{ShareName}/{TopicFilter}";
// "Subscriptions that have the same {ShareName}/{TopicFilter} belong to the same shared
// subscription group"; "only one client will receive messages published to that topic using a
// random distribution"; "When any backend application disconnects, the broker distributes the
// load to remaining subscribers in the group"; "Shared subscriptions don't receive retained
// messages when subscribing"; with wildcard filters, a message matching several groups is sent "to
// a random client in each matching shared subscription".
//
// aedes 2.0.0-beta.1 has no shared subscriptions: it refuses `$share/...` from an MQTT 5 client
// (SUBACK 0x9E) and gives an MQTT 3.1.1 client a subscription to the literal filter, which nothing
// matches. So each `$share/` filter is renamed, as its SUBSCRIBE or UNSUBSCRIBE is parsed, to a
// name under {@link INTERNAL_PREFIX} that aedes handles like any filter (SUBACK, QoS, persistent
// sessions, unsubscribing on close); aedes' registrations under that name are taken out of its
// emitter and kept as the members of their group, and the group alone listens on the real filter
// and hands each message to one member picked at random.
import type { Aedes, Client } from "aedes";
import { SHARE_PREFIX } from "../../core/iot-limits";

/**
 * What aedes sees instead of `$share/`: a filter aedes does not refuse, that no PUBLISH is ever
 * matched against (its registrations never reach aedes' emitter). A client that sends such a
 * filter itself gets the same shared subscription, authorised as `$share/...` (policyFilterOf).
 */
export const INTERNAL_PREFIX = "$local-share/";

/** The filter the IoT policy and the logs see: `$share/...` for a shared subscription. */
export function policyFilterOf(filter: string): string {
  return filter.startsWith(INTERNAL_PREFIX)
    ? SHARE_PREFIX + filter.slice(INTERNAL_PREFIX.length)
    : filter;
}

/** Whether a filter aedes handed over (renamed) is a shared subscription's. */
export function isShared(filter: string): boolean {
  return filter.startsWith(INTERNAL_PREFIX);
}

/** The filter whose messages a shared filter's group receives ("sports/#" of "$share/g/sports/#"). */
function topicFilterOf(internal: string): string {
  const rest = internal.slice(INTERNAL_PREFIX.length);
  return rest.slice(rest.indexOf("/") + 1);
}

// An ill-formed `$share/` filter never gets here: the packet scanner refuses it (topicFilterProblem).
function toInternal(filter: string): string {
  return filter.startsWith(SHARE_PREFIX)
    ? INTERNAL_PREFIX + filter.slice(SHARE_PREFIX.length)
    : filter;
}

type Listener = (packet: { topic: string }, done: () => void) => void;
type Callback = (err?: Error | null) => void;

interface Group {
  readonly topicFilter: string;
  /** aedes' delivery functions of the members' subscriptions (online members only). */
  readonly members: Listener[];
  readonly deliver: Listener;
}

export interface SharedSubscriptionStats {
  /** Groups with at least one online member now. */
  groups: number;
  /** Messages handed to one member of a group. */
  delivered: number;
}

/**
 * Installs shared subscriptions on an aedes instance (once, before it handles a connection).
 * `random` picks a member: [0, 1) like Math.random.
 */
export class SharedSubscriptions {
  private readonly groups = new Map<string, Group>();
  readonly stats: SharedSubscriptionStats = { groups: 0, delivered: 0 };

  constructor(
    aedes: Aedes,
    private readonly random: () => number = Math.random,
  ) {
    type Internals = {
      handle(conn: unknown, req?: unknown): Client;
      subscribe(topic: string, func: Listener, done?: Callback): void;
      unsubscribe(topic: string, func: Listener, done?: Callback): void;
    };
    const a = aedes as unknown as Internals;
    const handle = a.handle.bind(a);
    const subscribe = a.subscribe.bind(a);
    const unsubscribe = a.unsubscribe.bind(a);
    // Rename `$share/` filters as each SUBSCRIBE / UNSUBSCRIBE is parsed, before aedes' handler.
    a.handle = (conn, req) => {
      const client = handle(conn, req);
      const parser = (client as unknown as { _parser: NodeJS.EventEmitter })._parser;
      parser.prependListener("packet", renameShared);
      return client;
    };
    a.subscribe = (topic, func, done) => {
      if (!isShared(topic)) return subscribe(topic, func, done);
      let group = this.groups.get(topic);
      if (!group) {
        const g: Group = {
          topicFilter: topicFilterOf(topic),
          members: [],
          deliver: (packet, cb) => this.deliver(g, packet, cb),
        };
        group = g;
        this.groups.set(topic, g);
        this.stats.groups++;
        subscribe(g.topicFilter, g.deliver);
      }
      group.members.push(func);
      done?.();
    };
    a.unsubscribe = (topic, func, done) => {
      if (!isShared(topic)) return unsubscribe(topic, func, done);
      const group = this.groups.get(topic);
      const at = group ? group.members.indexOf(func) : -1;
      if (group && at >= 0) {
        group.members.splice(at, 1);
        if (group.members.length === 0) {
          this.groups.delete(topic);
          this.stats.groups--;
          unsubscribe(group.topicFilter, group.deliver);
        }
      }
      done?.();
    };
  }

  /** One member, at random, gets the message; none online: nobody (QoS 0 and 1 alike). */
  private deliver(group: Group, packet: { topic: string }, done: () => void): void {
    // [MQTT-4.7.2-1] a filter starting with a wildcard does not match topics starting with $,
    // as aedes applies to its own subscriptions.
    const wild = group.topicFilter[0] === "+" || group.topicFilter[0] === "#";
    const n = group.members.length;
    if (n === 0 || (wild && packet.topic.startsWith("$"))) return done();
    this.stats.delivered++;
    group.members[Math.min(n - 1, Math.floor(this.random() * n))](packet, done);
  }
}

function renameShared(packet: {
  cmd: string;
  subscriptions?: { topic: string }[];
  unsubscriptions?: string[];
}): void {
  if (packet.cmd === "subscribe" && packet.subscriptions) {
    for (const s of packet.subscriptions) s.topic = toInternal(s.topic);
  } else if (packet.cmd === "unsubscribe" && packet.unsubscriptions) {
    packet.unsubscriptions = packet.unsubscriptions.map(toInternal);
  }
}
