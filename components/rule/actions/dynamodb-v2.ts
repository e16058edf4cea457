// The DynamoDBv2 rule action: each message's SQL result is written as one item (each root-level
// attribute a column) of a table the stack creates for the rule, through a role allowed only
// dynamodb:PutItem on that table
// (https://docs.aws.amazon.com/iot/latest/developerguide/dynamodb-v2-rule-action.html: "An IAM role
// that AWS IoT can assume to perform the dynamodb:PutItem operation").
import * as aws from "@pulumi/aws";
import type * as pulumi from "@pulumi/pulumi";
import type { KeyAttribute } from "../../../core/topic-rules/actions/dynamodb-v2";
import {
  actionRole,
  type ProgramActionFactory,
  type RuleAction,
  type RuleActionRoleBinding,
  type RuleActionConfigOf,
  type RuleBindContext,
} from "./action";

export interface DynamoDbV2ActionArgs {
  readonly tableName: string;
  /** The table's partition key: a root-level key of every SQL result the rule writes. */
  readonly partitionKey: KeyAttribute;
  /** The table's sort key, if it has one. @default none */
  readonly sortKey?: KeyAttribute;
  /** The role's name; auto-named when undefined. */
  readonly roleName?: pulumi.Input<string>;
  /** @default "dynamodb" */
  readonly id?: string;
}

export class DynamoDbV2Action implements RuleAction {
  readonly id: string;
  /** The table, once bound. */
  table?: aws.dynamodb.Table;

  constructor(private readonly args: DynamoDbV2ActionArgs) {
    this.id = args.id ?? "dynamodb";
  }

  bind(rule: RuleBindContext): RuleActionRoleBinding<RuleActionConfigOf<"dynamodbv2">> {
    const { partitionKey, sortKey } = this.args;
    // On demand: a rule's write rate follows its devices, not a provisioned capacity that a burst
    // would exceed ("A user error causes DynamoDB provisioned throughput to be exceeded" is the
    // error handling page's own example of an action failing).
    const table = new aws.dynamodb.Table(
      `${rule.name}-${this.id}-table`,
      {
        name: this.args.tableName,
        billingMode: "PAY_PER_REQUEST",
        hashKey: partitionKey.name,
        ...(sortKey === undefined ? {} : { rangeKey: sortKey.name }),
        attributes: [partitionKey, ...(sortKey === undefined ? [] : [sortKey])].map((k) => ({
          name: k.name,
          type: k.type,
        })),
      },
      { parent: rule.parent },
    );
    this.table = table;
    const { role, grant } = actionRole(rule, this.id, this.args.roleName, table.arn, (arn) => [
      {
        // PutItem authorizes on the table (resource type `table`,
        // arn:${Partition}:dynamodb:${Region}:${Account}:table/${TableName}: list_amazondynamodb.html).
        Sid: "PutItem",
        Effect: "Allow" as const,
        Action: ["dynamodb:PutItem"],
        Resource: [arn],
      },
    ]);
    return {
      role,
      grant,
      config: {
        kind: "dynamodbv2",
        value: { putItem: { tableName: table.name }, roleArn: role.arn },
      },
    };
  }
}

export const dynamoDbV2FromConfig: ProgramActionFactory<"dynamoDBv2"> = (spec, ctx) =>
  new DynamoDbV2Action({ id: ctx.id, ...spec.params });
