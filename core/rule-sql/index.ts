// IoT SQL (2016-03-23) for topic rules: the parser, the function catalogue and the evaluator.
export * from "./ast";
export { parseRuleSql, parsedOnlyFunctions, nearestFunction, RuleSqlError } from "./parser";
export {
  FUNCTIONS,
  functionUrl,
  type FunctionSpec,
  type MqttProperties,
  type RegistryLookup,
  type Support,
} from "./functions";
export {
  compileExpression,
  compileRule,
  evaluateRule,
  RuleEvaluationError,
  type CompiledRule,
  type RuleInput,
  type RuleResult,
} from "./evaluate";
export { LIMITS, serialize, type SqlValue, type Value } from "./values";
