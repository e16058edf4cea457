// IoT SQL (2016-03-23) for topic rules: the parser and the evaluator, re-exported.
export * from "./ast";
export { parseRuleSql, RuleSqlError } from "./parser";
export {
  evaluateRule,
  topicMatches,
  type RuleInput,
  type RuleResult,
  type SqlValue,
} from "./evaluate";
