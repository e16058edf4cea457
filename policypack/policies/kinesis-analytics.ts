// Policy 9: the seed's Kinesis Data Analytics for SQL application cannot be created any more.
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { TYPES, str, validateType } from "./common";

export const kinesisAnalyticsSqlRetired: ResourceValidationPolicy = {
  name: "kinesis-analytics-sql-application-retired",
  description:
    "aws.kinesis.AnalyticsApplication (Kinesis Data Analytics for SQL) cannot be deployed: AWS accepts no new SQL applications since 2025-10-15.",
  enforcementLevel: "mandatory",
  severity: "high",
  validateResource: validateType(TYPES.kinesisAnalyticsSql, (props, args, report) => {
    report(
      `aws.kinesis.AnalyticsApplication ${str(props.name) ?? args.name} is Kinesis Data Analytics for SQL, which no longer accepts new applications (since 2025-10-15; existing ones are deleted from 2026-01-27); replace it with Amazon Managed Service for Apache Flink (aws.kinesisanalyticsv2.Application, runtime FLINK-1_20)`,
    );
  }),
};
