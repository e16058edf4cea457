// The local topic rule: the stack's IoT SQL run on every accepted publish, its Firehose action
// (record + the action's separator) and, when that action fails, the error action in AWS's shape.
import { randomUUID } from "node:crypto";
import { FIREHOSE_RECORD_SEPARATOR } from "../core/delivery";
import { evaluateRule, parseRuleSql, type RuleStatement, type SqlValue } from "../core/rule-sql";

import type { StackConfig } from "../core/stack-config";
import { FirehoseRecordError } from "./firehose";

/** The message the rule's error action receives, as AWS IoT documents it. */
export interface RuleErrorMessage {
  readonly ruleName: string;
  readonly topic: string;
  readonly cloudwatchTraceId: string;
  readonly clientId: string;
  readonly base64OriginalPayload: string;
  readonly failures: readonly {
    readonly failedAction: string;
    readonly failedResource: string;
    readonly errorMessage: string;
  }[];
}

export interface RuleEngineOptions {
  /** The Firehose action: resolves once the record is durable (then the broker may PUBACK). */
  readonly firehosePut: (record: Buffer) => Promise<void>;
  /** The error action: receives the error message as one JSON line. */
  readonly errorAction: (message: Buffer) => Promise<void>;
  readonly log?: (line: string) => void;
  readonly now?: () => number;
  readonly uuid?: () => string;
}

/** What a matched message produced, for other local consumers (the analytics window). */
export type RuleOutputListener = (
  output: SqlValue,
  message: { readonly topic: string; readonly clientId: string; readonly receivedAt: number },
) => void;

export interface RuleStats {
  /** Messages on a topic the rule's FROM filter matches. */
  onTopic: number;
  /** Messages whose WHERE held (or that had no WHERE): the actions ran. */
  matched: number;
  /** Messages the WHERE clause filtered out. */
  whereFalse: number;
  /** Firehose action failures, each sent to the error action. */
  actionFailures: number;
}

export class LocalRuleEngine {
  readonly stats: RuleStats = { onTopic: 0, matched: 0, whereFalse: 0, actionFailures: 0 };
  readonly statement: RuleStatement;
  private readonly listeners: RuleOutputListener[] = [];
  private readonly now: () => number;
  private readonly uuid: () => string;
  private readonly log: (line: string) => void;

  constructor(
    private readonly config: StackConfig,
    private readonly opts: RuleEngineOptions,
  ) {
    // The config loader has already validated the SQL with this parser.
    this.statement = parseRuleSql(config.rule.sql);
    this.now = opts.now ?? Date.now;
    this.uuid = opts.uuid ?? randomUUID;
    this.log = opts.log ?? (() => undefined);
  }

  /** Adds a consumer of every matched message's SELECT output (called after the actions). */
  onOutput(listener: RuleOutputListener): void {
    this.listeners.push(listener);
  }

  /**
   * Runs the rule on one accepted publish. Resolves when its actions have taken the message
   * (durably); rejects only when neither the action nor the error action could, so that the
   * broker withholds the PUBACK and the device sends the message again.
   */
  async onPublish(clientId: string, topic: string, payload: Buffer): Promise<void> {
    const receivedAt = this.now();
    const result = evaluateRule(this.statement, {
      payload,
      topic,
      clientId,
      timestamp: receivedAt,
      newuuid: this.uuid,
    });
    if (!result.matched) {
      if (result.reason === "where") {
        this.stats.onTopic++;
        this.stats.whereFalse++;
      }
      return;
    }
    this.stats.onTopic++;
    this.stats.matched++;
    const body = Buffer.isBuffer(result.output)
      ? result.output
      : Buffer.from(JSON.stringify(result.output));
    const record = Buffer.concat([body, Buffer.from(FIREHOSE_RECORD_SEPARATOR)]);
    try {
      await this.opts.firehosePut(record);
    } catch (e) {
      // Only a refusal by Firehose is the action failing; a journal I/O error must withhold the PUBACK.
      if (!(e instanceof FirehoseRecordError)) throw e;
      this.stats.actionFailures++;
      const message: RuleErrorMessage = {
        ruleName: this.config.rule.name,
        topic,
        cloudwatchTraceId: this.uuid(),
        clientId,
        base64OriginalPayload: payload.toString("base64"),
        failures: [
          {
            failedAction: "FirehoseAction",
            failedResource: this.config.delivery.streamName,
            errorMessage: `Failed to send message to Firehose stream ${this.config.delivery.streamName}: ${e.message}. Message arrived on: ${topic}, Action: firehose`,
          },
        ],
      };
      this.log(
        `rule ${this.config.rule.name}: Firehose action failed for ${clientId} on ${topic}: ${e.message}; error action run`,
      );
      await this.opts.errorAction(Buffer.from(`${JSON.stringify(message)}\n`));
      return;
    }
    for (const listen of this.listeners) listen(result.output, { topic, clientId, receivedAt });
  }
}
