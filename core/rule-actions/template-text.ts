// Where a substitution template can appear in an action parameter: `${expression}`, evaluated
// per message (https://docs.aws.amazon.com/iot/latest/developerguide/iot-substitution-templates.html).
// The new actions' config checks need only to know where the literal text ends.

/** Whether `text` holds a `${...}` substitution template. */
export function hasTemplate(text: string): boolean {
  return text.includes("${");
}

/** The literal text before the first template (all of it when there is none). */
export function literalPrefix(text: string): string {
  const at = text.indexOf("${");
  return at < 0 ? text : text.slice(0, at);
}
