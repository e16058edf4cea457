// The stack config's further rules (`rules`) in the program, under Pulumi mocks: each action a
// module creating its own role with its AWS page's grant, the rule's error action, and the
// telemetry rule's resources exactly where they were (their URNs are what `pulumi up` diffs).
import { strict as assert } from "node:assert";
import { runProgram, MOCK_ACCOUNT_ID, type ProgramRun } from "../../tools/mock-program";
import { byUrn, grants, json, ofType, one, statements, trustedServices } from "./helpers";

const T = {
  rule: "aws:iot/topicRule:TopicRule",
  role: "aws:iam/role:Role",
  rolePolicy: "aws:iam/rolePolicy:RolePolicy",
  alarm: "aws:cloudwatch/metricAlarm:MetricAlarm",
  logGroup: "aws:cloudwatch/logGroup:LogGroup",
  topic: "aws:sns/topic:Topic",
};

const ruleNamed = (run: ProgramRun, name: string) => one(run, T.rule, (r) => r.props.name === name);
const roleByArn = (run: ProgramRun, arn: unknown) => one(run, T.role, (r) => r.props.arn === arn);

describe("program: the stack's further topic rules (components/rule/topic-rule.ts, actions/)", () => {
  let prod: ProgramRun;
  before(async () => {
    prod = await runProgram("prod");
  });

  it("the telemetry rule keeps its component type, name and children (URNs unchanged)", async () => {
    const dev = await runProgram("dev");
    const urns = dev.resources
      .map((r) => r.urn)
      .filter((u) => /rule:TelemetryRule/.test(u))
      .sort();
    const P = "urn:pulumi:dev::iot-pipeline::iot-pipeline:rule:TelemetryRule$";
    assert.deepEqual(urns, [
      "urn:pulumi:dev::iot-pipeline::iot-pipeline:index:TelemetryPipeline$iot-pipeline:rule:TelemetryRule::iot-pipeline-rule",
      `${P}aws:cloudwatch/logGroup:LogGroup::iot-pipeline-rule-errors`,
      `${P}aws:iam/role:Role::iot-pipeline-rule-errors-role`,
      `${P}aws:iam/role:Role::iot-pipeline-rule-firehose-role`,
      `${P}aws:iam/role:Role::iot-pipeline-rule-kinesis-role`,
      `${P}aws:iam/rolePolicy:RolePolicy::iot-pipeline-rule-errors-role-policy`,
      `${P}aws:iam/rolePolicy:RolePolicy::iot-pipeline-rule-firehose-role-policy`,
      `${P}aws:iam/rolePolicy:RolePolicy::iot-pipeline-rule-kinesis-role-policy`,
      `${P}aws:iot/topicRule:TopicRule::iot-pipeline-rule-rule`,
    ]);
    assert.equal(ofType(dev, T.rule).length, 1, "dev has no further rule");
  });

  it("prod's alerts rule: SQL 2016-03-23, its republish and metric actions, its own error log group", () => {
    const rule = ruleNamed(prod, "alerts");
    assert.equal(rule.props.sqlVersion, "2016-03-23");
    assert.equal(rule.props.enabled, true);
    assert.match(String(rule.props.sql), /WHERE temperature > 15$/);
    assert.equal(byUrn(prod, rule.parent as string).type, "iot-pipeline:rule:TopicRule");
    const [republish] = rule.props.republishes as Record<string, unknown>[];
    assert.deepEqual(
      { ...republish, roleArn: undefined },
      {
        topic: "alerts/${topic(2)}",
        qos: 1,
        roleArn: undefined,
      },
    );
    const [metric] = rule.props.cloudwatchMetrics as Record<string, unknown>[];
    assert.equal(metric.metricValue, "${temperature}");
    assert.equal(metric.metricNamespace, "IotPipeline/Alerts");
    const logs = (rule.props.errorAction as { cloudwatchLogs: Record<string, unknown> })
      .cloudwatchLogs;
    assert.equal(logs.logGroupName, "/iot/rules/alerts/errors");
    one(prod, T.logGroup, (g) => g.props.name === "/iot/rules/alerts/errors");
    // IoT checks that it may pass each role when it creates the rule: the grants come first.
    const deps = rule.options.dependencies;
    for (const p of ofType(prod, T.rolePolicy).filter((x) =>
      x.name.startsWith("iot-pipeline-topic-rule-alerts-"),
    )) {
      assert.ok(deps.includes(p.urn), `the rule waits for ${p.name}`);
    }
  });

  it("the republish role: trusted by IoT for this account only, iot:Publish on alerts/* and nothing else (republish-rule-action.html)", () => {
    const [republish] = ruleNamed(prod, "alerts").props.republishes as Record<string, unknown>[];
    const role = roleByArn(prod, republish.roleArn);
    assert.deepEqual(trustedServices(role), ["iot.amazonaws.com"]);
    assert.deepEqual(grants(prod, role), {
      actions: ["iot:Publish"],
      resources: [`arn:aws:iot:us-east-1:${MOCK_ACCOUNT_ID}:topic/alerts/*`],
    });
  });

  it("the metric role: cloudwatch:PutMetricData narrowed to its namespace (cloudwatch-metrics-rule-action.html)", () => {
    const [metric] = ruleNamed(prod, "alerts").props.cloudwatchMetrics as Record<string, unknown>[];
    const role = roleByArn(prod, metric.roleArn);
    const policy = one(prod, T.rolePolicy, (p) => p.props.role === role.props.name);
    assert.deepEqual(statements(json(policy.props.policy)), [
      {
        Sid: "PutMetricData",
        Effect: "Allow",
        Action: ["cloudwatch:PutMetricData"],
        Resource: ["*"],
        Condition: { StringLike: { "cloudwatch:namespace": "IotPipeline/Alerts" } },
      },
    ]);
  });

  it("the metric's alarm: on the action's metric, notifying the stack's alarm topic", () => {
    const alarm = one(
      prod,
      T.alarm,
      (a) => a.props.name === "iot-pipeline-prod-alerts-HighTemperature",
    );
    const topic = one(prod, T.topic);
    assert.deepEqual(
      {
        namespace: alarm.props.namespace,
        metricName: alarm.props.metricName,
        statistic: alarm.props.statistic,
        period: alarm.props.period,
        threshold: alarm.props.threshold,
        comparisonOperator: alarm.props.comparisonOperator,
        alarmActions: alarm.props.alarmActions,
      },
      {
        namespace: "IotPipeline/Alerts",
        metricName: "HighTemperature",
        statistic: "SampleCount",
        period: 60,
        threshold: 0,
        comparisonOperator: "GreaterThanThreshold",
        alarmActions: [topic.props.arn],
      },
    );
    // The rule's error rate is watched like the telemetry rule's.
    one(prod, T.alarm, (a) => a.props.name === "iot-pipeline-prod-alerts-rule-error-rate");
  });

  it("an alarm action: cloudwatch:SetAlarmState on that one alarm; a republish error action; a disabled rule", async () => {
    const run = await runProgram("prod", {
      overrides: {
        rules: [
          {
            name: "trip",
            enabled: false,
            sql: "SELECT * FROM 'SeattleStoreTemp/+' WHERE temperature > 40",
            actions: [
              {
                cloudwatchAlarm: {
                  alarmName: "iot-pipeline-prod-rule-error-rate",
                  stateValue: "ALARM",
                  stateReason: "${temperature} on ${topic()}",
                },
              },
            ],
            errorAction: { republish: { topic: "errors/trip" } },
          },
        ],
      },
    });
    const rule = ruleNamed(run, "trip");
    assert.equal(rule.props.enabled, false);
    const [alarm] = rule.props.cloudwatchAlarms as Record<string, unknown>[];
    assert.equal(alarm.alarmName, "iot-pipeline-prod-rule-error-rate");
    assert.deepEqual(grants(run, roleByArn(run, alarm.roleArn)), {
      actions: ["cloudwatch:SetAlarmState"],
      resources: [
        `arn:aws:cloudwatch:us-east-1:${MOCK_ACCOUNT_ID}:alarm:iot-pipeline-prod-rule-error-rate`,
      ],
    });
    const error = (rule.props.errorAction as { republish: Record<string, unknown> }).republish;
    assert.equal(error.topic, "errors/trip");
    assert.deepEqual(grants(run, roleByArn(run, error.roleArn)), {
      actions: ["iot:Publish"],
      resources: [`arn:aws:iot:us-east-1:${MOCK_ACCOUNT_ID}:topic/errors/trip`],
    });
  });

  it("errorAction: none registers the rule without one", async () => {
    const run = await runProgram("dev", {
      overrides: {
        rules: [
          {
            name: "quiet",
            sql: "SELECT * FROM 'a/b'",
            actions: [{ republish: { topic: "c/d" } }],
            errorAction: "none",
          },
        ],
      },
    });
    assert.equal(ruleNamed(run, "quiet").props.errorAction, undefined);
  });
});
