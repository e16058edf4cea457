// The DynamoDBv2 rule action
// (https://docs.aws.amazon.com/iot/latest/developerguide/dynamodb-v2-rule-action.html): "writes all
// or part of an MQTT message to an Amazon DynamoDB table. Each attribute in the payload is written
// to a separate column"; "An IAM role that AWS IoT can assume to perform the dynamodb:PutItem
// operation"; "The MQTT message payload must contain a root-level key that matches the table's
// primary partition key and a root-level key that matches the table's primary sort key, if one is
// defined"; "The data written to the DynamoDB table is the result from the SQL statement".
import { Dec, isObject, type SqlValue } from "../rule-sql/values";

export const DYNAMODB_V2_ACTION_PAGE =
  "https://docs.aws.amazon.com/iot/latest/developerguide/dynamodb-v2-rule-action.html";
export const DYNAMODB_PUT_ITEM_PAGE =
  "https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_PutItem.html";

/** A key attribute's type: "S", "N" or "B" (KeySchema/AttributeDefinitions). */
export type KeyType = "S" | "N" | "B";

export interface KeyAttribute {
  readonly name: string;
  readonly type: KeyType;
}

/** A DynamoDBv2 action as the stack config gives it: the table the stack creates for it. */
export interface DynamoDbV2ActionSpec {
  readonly kind: "dynamoDBv2";
  readonly tableName: string;
  readonly partitionKey: KeyAttribute;
  readonly sortKey?: KeyAttribute;
}

/** Table names: 3 to 255 of `[a-zA-Z0-9_.-]` (DynamoDB's naming rules). */
const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/;

function keyProblem(which: string, k: unknown): string | undefined {
  const o = k as { name?: unknown; type?: unknown } | undefined;
  if (typeof o?.name !== "string" || o.name === "") return `${which}.name is required`;
  if (o.type !== undefined && o.type !== "S" && o.type !== "N" && o.type !== "B") {
    return `${which}.type ${JSON.stringify(o.type)} is not S, N or B`;
  }
  return undefined;
}

export function dynamoDbV2ActionProblem(raw: Record<string, unknown>): string | undefined {
  const name = raw.tableName;
  if (typeof name !== "string" || !TABLE_NAME.test(name)) {
    return `tableName ${JSON.stringify(name ?? null)} is not a DynamoDB table name (3 to 255 letters, digits, _ . -); the stack creates the table, so it cannot be a template`;
  }
  if (raw.partitionKey === undefined) {
    return "partitionKey is required ({ name, type: S|N|B }): the table's partition key, a root-level key of the rule's SELECT output";
  }
  return (
    keyProblem("partitionKey", raw.partitionKey) ??
    (raw.sortKey === undefined ? undefined : keyProblem("sortKey", raw.sortKey))
  );
}

export function dynamoDbTableArn(
  partition: string,
  region: string,
  account: string,
  table: string,
): string {
  return `arn:${partition}:dynamodb:${region}:${account}:table/${table}`;
}

/** A DynamoDB AttributeValue (the API's typed JSON). */
export type AttributeValue =
  | { S: string }
  | { N: string }
  | { B: string }
  | { BOOL: boolean }
  | { NULL: true }
  | { L: AttributeValue[] }
  | { M: Record<string, AttributeValue> };

/** The SQL result's value as the typed value DynamoDB stores: JSON types to S, N, BOOL, NULL, L, M. */
export function attributeValue(v: SqlValue): AttributeValue {
  if (v === null) return { NULL: true };
  if (typeof v === "string") return { S: v };
  if (typeof v === "number") return { N: String(v) };
  if (typeof v === "boolean") return { BOOL: v };
  if (Buffer.isBuffer(v)) return { B: v.toString("base64") };
  if (Array.isArray(v)) return { L: v.map(attributeValue) };
  if (v instanceof Dec) return { N: v.toString() };
  return {
    M: Object.fromEntries(Object.entries(v).map(([k, x]) => [k, attributeValue(x)])),
  };
}

/** A PutItem DynamoDB would refuse (ValidationException), with DynamoDB's message. */
export class DynamoDbValidationError extends Error {}

/**
 * The PutItem request AWS IoT makes for one SQL result: each root-level attribute a column. The
 * result must be an object holding the table's keys with their types, or DynamoDB answers
 * ValidationException ("One or more parameter values were invalid: Missing the key ... in the
 * item", "... Type mismatch for key ..."), which the rule reports to its error action.
 */
export function dynamoPutItemRequest(
  spec: Pick<DynamoDbV2ActionSpec, "tableName" | "partitionKey" | "sortKey">,
  output: SqlValue | undefined,
): { TableName: string; Item: Record<string, AttributeValue> } {
  if (!isObject(output)) {
    throw new DynamoDbValidationError(
      "One or more parameter values were invalid: the rule's SQL result is not a JSON object, so it has no attributes to write",
    );
  }
  const item = Object.fromEntries(Object.entries(output).map(([k, x]) => [k, attributeValue(x)]));
  for (const key of [spec.partitionKey, ...(spec.sortKey === undefined ? [] : [spec.sortKey])]) {
    const v = item[key.name];
    if (v === undefined) {
      throw new DynamoDbValidationError(
        `One or more parameter values were invalid: Missing the key ${key.name} in the item`,
      );
    }
    const actual = Object.keys(v)[0];
    if (actual !== key.type) {
      throw new DynamoDbValidationError(
        `One or more parameter values were invalid: Type mismatch for key ${key.name} expected: ${key.type} actual: ${actual}`,
      );
    }
  }
  return { TableName: spec.tableName, Item: item };
}
