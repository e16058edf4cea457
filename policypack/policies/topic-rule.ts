// Policy 7: the topic rule speaks IoT SQL 2016-03-23 with a quoted FROM topic, and outside dev
// has an error action, so failed deliveries are reported instead of dropped.
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { RuleSqlError, parseRuleSql } from "../../core/rule-sql";
import { TYPES, devStacksSchema, inDevStack, obj, str, validateType } from "./common";

/** The only SQL version with nested objects, arrays and the current functions. */
export const RULE_SQL_VERSION = "2016-03-23";

export const iotTopicRuleChecked: ResourceValidationPolicy = {
  name: "iot-topic-rule-sql-and-error-action",
  description: `Topic rules use sqlVersion ${RULE_SQL_VERSION} and SQL whose FROM names a quoted topic filter; outside the dev stacks they also have an errorAction.`,
  enforcementLevel: "mandatory",
  severity: "medium",
  configSchema: devStacksSchema,
  validateResource: validateType(TYPES.iotTopicRule, (props, args, report) => {
    const name = str(props.name) ?? args.name;
    const version = str(props.sqlVersion);
    if (version !== RULE_SQL_VERSION) {
      report(
        `topic rule ${name} has sqlVersion ${JSON.stringify(props.sqlVersion ?? null)}; set sqlVersion to "${RULE_SQL_VERSION}"`,
      );
    }
    const sql = str(props.sql) ?? "";
    try {
      parseRuleSql(sql);
    } catch (e) {
      if (!(e instanceof RuleSqlError)) throw e;
      report(
        `topic rule ${name} has sql ${JSON.stringify(sql)} that IoT SQL ${RULE_SQL_VERSION} rejects (${e.message}); write SELECT ... FROM 'topic/filter' [WHERE ...]`,
      );
    }
    if (!inDevStack(args) && obj(props.errorAction) === undefined) {
      report(
        `topic rule ${name} has no errorAction, so failed actions are dropped silently; add an errorAction (CloudWatch Logs or S3 under the error prefix)`,
      );
    }
  }),
};
