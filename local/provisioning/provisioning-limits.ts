// How much of the provisioning API one connection, and one claim certificate, may use: token buckets
// that throttle requests before any parsing or cryptography, so that a claim holder flooding on one
// connection is refused with 429 while devices on other connections are still answered. AWS IoT
// throttles its fleet provisioning API too (account-level quotas, "AWS IoT Core endpoints and
// quotas", https://docs.aws.amazon.com/general/latest/gr/iot-core.html, and RegisterThing's
// "might exceed your account level AWS IoT Throttling Limits and cause throttle errors",
// https://docs.aws.amazon.com/iot/latest/apireference/API_RegisterThing.html); the numbers here are
// this emulation's, chosen so that one device's flow (two requests, a few retries) never meets them.

/** A rate: `burst` requests at once, then `perSecond` on average. */
export interface Rate {
  readonly burst: number;
  readonly perSecond: number;
}

export interface ProvisioningLimits {
  /** Requests of one connection (client id). */
  readonly perConnection: Rate;
  /** Requests of every connection of one claim certificate together. */
  readonly perClaim: Rate;
  /** Certificates one connection may hold waiting for RegisterThing; a new one replaces its oldest. */
  readonly pendingPerConnection: number;
  /** Certificates waiting for RegisterThing in all; a new one replaces the oldest. */
  readonly pendingTotal: number;
}

/**
 * A device makes two requests (CreateCertificateFromCsr, RegisterThing) and retries a few; the
 * simulator's bench provisions about 40 devices a second through one claim (80 requests/s).
 */
export const DEFAULT_PROVISIONING_LIMITS: ProvisioningLimits = {
  perConnection: { burst: 10, perSecond: 1 },
  perClaim: { burst: 500, perSecond: 250 },
  pendingPerConnection: 4,
  pendingTotal: 10_000,
};

/** Buckets kept at most; full (idle) ones are dropped first, so memory does not grow with ids. */
const MAX_BUCKETS = 20_000;

class Buckets {
  private readonly tokens = new Map<string, { level: number; at: number }>();

  constructor(private readonly rate: Rate) {}

  /** Takes one token for `key` at `now` (ms); false when there is none. */
  take(key: string, now: number): boolean {
    let b = this.tokens.get(key);
    if (b === undefined) {
      if (this.tokens.size >= MAX_BUCKETS) this.prune(now);
      b = { level: this.rate.burst, at: now };
      this.tokens.set(key, b);
    }
    b.level = Math.min(this.rate.burst, b.level + ((now - b.at) / 1000) * this.rate.perSecond);
    b.at = now;
    if (b.level < 1) return false;
    b.level -= 1;
    return true;
  }

  /** Whether `key` has every token (it has been quiet long enough to refill). */
  full(key: string, now: number): boolean {
    const b = this.tokens.get(key);
    return (
      b === undefined || b.level + ((now - b.at) / 1000) * this.rate.perSecond >= this.rate.burst
    );
  }

  /** Drops buckets that have refilled (their keys are as good as new), else the oldest half. */
  private prune(now: number): void {
    for (const [k, b] of this.tokens) {
      if (b.level + ((now - b.at) / 1000) * this.rate.perSecond >= this.rate.burst) {
        this.tokens.delete(k);
      }
    }
    if (this.tokens.size < MAX_BUCKETS) return;
    let drop = Math.floor(this.tokens.size / 2);
    for (const k of this.tokens.keys()) {
      if (drop-- <= 0) break;
      this.tokens.delete(k);
    }
  }

  get size(): number {
    return this.tokens.size;
  }
}

/** Which bound refused a request. */
export type Throttled = "connection" | "claim";

export class RequestThrottle {
  private readonly connections: Buckets;
  private readonly claims: Buckets;
  /** Connections refused since they last refilled: one log line each, not one per request. */
  private readonly refusing = new Set<string>();

  constructor(readonly limits: ProvisioningLimits = DEFAULT_PROVISIONING_LIMITS) {
    this.connections = new Buckets(limits.perConnection);
    this.claims = new Buckets(limits.perClaim);
  }

  /**
   * Whether a request of `clientId` (holding claim `claimId`) may go on at `now`; the bound that
   * refused it otherwise. The connection's own bound is checked first, so a flooder spends its
   * own tokens, not the claim's that every other device shares.
   */
  admit(clientId: string, claimId: string, now: number): Throttled | undefined {
    // A connection quiet long enough to refill has stopped flooding: its next refusal is news.
    if (this.connections.full(clientId, now)) this.refusing.delete(clientId);
    if (!this.connections.take(clientId, now)) return "connection";
    if (!this.claims.take(claimId, now)) return "claim";
    return undefined;
  }

  /** Whether this refusal is the first of a run for the client (the one worth a log line). */
  firstRefusal(clientId: string): boolean {
    if (this.refusing.has(clientId)) return false;
    if (this.refusing.size >= MAX_BUCKETS) this.refusing.clear();
    this.refusing.add(clientId);
    return true;
  }
}
