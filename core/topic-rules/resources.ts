// The resources an action's parameters name, as IAM sees them: what a template may become is
// matched by `*`, and nothing wider.
import { parseTemplate } from "./template";

/** A template's text with each `${...}` replaced by `*` (IAM's any-characters wildcard). */
export function templatePattern(template: string): string {
  return parseTemplate(template)
    .parts.map((p) => (p.kind === "text" ? p.text : "*"))
    .join("");
}

/** A republish topic as IAM's iot:Publish sees it: `$$` is the reserved topic's `$`. */
export function republishTopicPattern(topic: string): string {
  const pattern = templatePattern(topic);
  return pattern.startsWith("$$") ? pattern.slice(1) : pattern;
}
