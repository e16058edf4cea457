// Where the local pipeline keeps the requests an action would have made to a service it does not
// run (SNS Publish, SQS SendMessage, DynamoDB PutItem): one JSON line per request, exactly the
// API's parameters, in `<stateDir>/aws-requests/<stack>/<service>.<Api>.jsonl`. A line is on disk
// (fdatasync) before the append resolves, so a rule's run that ends means its requests are
// recorded (only the telemetry rule holds a device's PUBACK; the further rules run beside it,
// local/rule/rule-engine.ts). Concurrent appends share one write and one sync; the
// file is open only while a batch is written, so nothing needs closing when the run stops.
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { nodeFiles, writeAll, type FileLayer } from "../../private/file-layer";

/** The folder of a stack's recorded requests. */
export function requestsDir(stateDir: string, stack: string): string {
  return path.join(stateDir, "aws-requests", stack);
}

/** The file of one API's requests, e.g. `sns.Publish.jsonl`. */
export function requestFile(stateDir: string, stack: string, service: string, api: string): string {
  return path.join(requestsDir(stateDir, stack), `${service}.${api}.jsonl`);
}

interface Pending {
  readonly line: Buffer;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

/** One API's request file, appended durably. */
export class RequestLog {
  /** Requests recorded (on disk) since the log was made. */
  recorded = 0;
  private queue: Pending[] = [];
  private flushing?: Promise<void>;

  constructor(
    readonly path: string,
    /** What the lines are written through; tests inject a full disk here. */
    private readonly files: FileLayer = nodeFiles,
  ) {}

  /** Appends one request as a JSON line; resolves once it is on disk. */
  append(request: unknown): Promise<void> {
    const line = Buffer.from(`${JSON.stringify(request)}\n`);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ line, resolve, reject });
      this.flushing ??= this.flush().finally(() => {
        this.flushing = undefined;
      });
    });
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0);
      try {
        await this.write(batch.map((p) => p.line));
        this.recorded += batch.length;
        for (const p of batch) p.resolve();
      } catch (e) {
        for (const p of batch) p.reject(e);
      }
    }
  }

  private async write(lines: readonly Buffer[]): Promise<void> {
    await fs.mkdir(path.dirname(this.path), { recursive: true });
    const file = await this.files.open(this.path, "a", 0o644);
    try {
      const size = (await fs.stat(this.path)).size;
      try {
        await writeAll(file, lines);
        await file.datasync();
      } catch (e) {
        // A full disk mid-line: cut the file back to its last whole line, so that every line
        // stays one request, then refuse the batch (the devices send their messages again).
        await file.truncate(size).catch(() => undefined);
        throw e;
      }
    } finally {
      await file.close();
    }
  }
}

/** A stack's request files, one log per API. */
export class RequestLogs {
  private readonly logs = new Map<string, RequestLog>();

  constructor(
    private readonly stateDir: string,
    private readonly stack: string,
    private readonly files: FileLayer = nodeFiles,
  ) {}

  of(service: string, api: string): RequestLog {
    const file = requestFile(this.stateDir, this.stack, service, api);
    let log = this.logs.get(file);
    if (log === undefined) {
      log = new RequestLog(file, this.files);
      this.logs.set(file, log);
    }
    return log;
  }

  /** Requests recorded per API (`sns.Publish`), for the run's summary. */
  counts(): Array<{ readonly api: string; readonly file: string; readonly recorded: number }> {
    return [...this.logs.values()].map((l) => ({
      api: path.basename(l.path, ".jsonl"),
      file: l.path,
      recorded: l.recorded,
    }));
  }
}
