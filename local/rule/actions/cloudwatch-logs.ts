// The CloudWatch Logs action offline: each record one line of the log group's file under the
// state folder, `<stateDir>/cloudwatch-logs/<group>.log`
// (https://docs.aws.amazon.com/iot/latest/developerguide/cloudwatch-logs-rule-action.html).
// The telemetry rule's error action writes where the local pipeline puts it (under the delivery
// stream's error prefix), through `cloudwatchLogsSink`.
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { ActionFailure, required, type LocalAction, type LocalActionFactory } from "./action";

/**
 * The most bytes one group's file holds in a run's state folder: past it the action fails (and
 * says so), as a log group over its account quota would; a bound on the disk a loop can fill.
 */
export const LOCAL_LOG_GROUP_MAX_BYTES = 64 * 1024 * 1024;

/** The action writing to a sink of the caller's (one line per record). */
export function cloudwatchLogsSink(
  logGroupName: string,
  sink: (line: Buffer) => Promise<void>,
): LocalAction {
  return {
    kind: "cloudwatchLogs",
    failedAction: "CloudwatchLogsAction",
    resource: logGroupName,
    run: (message) => sink(Buffer.concat([message.record, Buffer.from("\n")])),
  };
}

/** The group's file: its name with `/` as `_`, so that every group is one file of one folder. */
export function logGroupFile(stateDir: string, logGroupName: string): string {
  return path.join(
    stateDir,
    "cloudwatch-logs",
    `${logGroupName.replace(/^\/+/, "").replace(/[/#]/g, "_")}.log`,
  );
}

export const localCloudwatchLogs: LocalActionFactory<"cloudwatchLogs"> = (spec, services, ctx) => {
  const group = spec.params.logGroupName;
  const file = logGroupFile(required(services.stateDir, "a state folder", ctx), group);
  let size: number | undefined;
  return cloudwatchLogsSink(group, async (line) => {
    if (size === undefined) {
      await fs.mkdir(path.dirname(file), { recursive: true });
      size = await fs.stat(file).then(
        (s) => s.size,
        () => 0,
      );
    }
    if (size + line.length > LOCAL_LOG_GROUP_MAX_BYTES) {
      throw new ActionFailure(
        `Failed to put log events: the local log group file ${file} holds ${LOCAL_LOG_GROUP_MAX_BYTES} bytes; remove it to write more`,
        group,
      );
    }
    size += line.length;
    await fs.appendFile(file, line);
  });
};
