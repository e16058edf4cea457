// The DynamoDBv2 rule action
// (https://docs.aws.amazon.com/iot/latest/developerguide/dynamodb-v2-rule-action.html): "writes all
// or part of an MQTT message to an Amazon DynamoDB table. Each attribute in the payload is written
// to a separate column"; "An IAM role that AWS IoT can assume to perform the dynamodb:PutItem
// operation"; "The MQTT message payload must contain a root-level key that matches the table's
// primary partition key and a root-level key that matches the table's primary sort key, if one is
// defined"; "The data written to the DynamoDB table is the result from the SQL statement".
import { Dec, isObject, type SqlValue } from "../../rule-sql/values";
import { ParamReader, type ActionDefinition } from "./action";

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

export interface DynamoDbV2Params {
  /** The table the stack creates for the action (not a template: the role grants on it). */
  readonly tableName: string;
  readonly partitionKey: KeyAttribute;
  readonly sortKey?: KeyAttribute;
}

export interface DynamoDbV2Spec {
  readonly kind: "dynamoDBv2";
  readonly params: DynamoDbV2Params;
}

function keyAttribute(p: ParamReader, key: string): KeyAttribute {
  const raw = p.raw[key];
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    p.fail(
      key,
      raw ?? null,
      "set {name, type} with type S, N or B (a root-level key of the rule's SQL result)",
    );
  }
  const k = new ParamReader(
    raw as Record<string, unknown>,
    { ...p.ctx, at: `${p.ctx.at}.${key}` },
    ["name", "type"],
  );
  return {
    name: k.string("name", /^.{1,255}$/),
    type: k.oneOf<KeyType>("type", ["S", "N", "B"], "S"),
  };
}

export const dynamoDbV2Definition: ActionDefinition<"dynamoDBv2", DynamoDbV2Params> = {
  kind: "dynamoDBv2",
  failedAction: "DynamoDBv2Action",
  page: DYNAMODB_V2_ACTION_PAGE,
  parse(raw, ctx) {
    const p = new ParamReader(raw, ctx, ["tableName", "partitionKey", "sortKey"]);
    // DynamoDB's naming rules: 3 to 255 of a-z, A-Z, 0-9, _ - .
    const tableName = p.string(
      "tableName",
      /^[A-Za-z0-9_.-]{3,255}$/,
      "set the table's name (3 to 255 letters, digits, _ . -; the stack creates the table, so not a template)",
    );
    const partitionKey = keyAttribute(p, "partitionKey");
    const sortKey = p.raw.sortKey === undefined ? undefined : keyAttribute(p, "sortKey");
    if (sortKey !== undefined && sortKey.name === partitionKey.name) {
      p.fail(
        "sortKey",
        sortKey.name,
        "the sort key must be another attribute than the partition key",
      );
    }
    return { tableName, partitionKey, ...(sortKey === undefined ? {} : { sortKey }) };
  },
};

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
  spec: DynamoDbV2Params,
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
