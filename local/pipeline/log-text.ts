// One log line stays one line, and says what a client sent rather than doing it: control
// characters in client-chosen text (a client id, a topic, a certificate's name) are written as
// escapes, so that a NUL, a newline or a terminal escape sequence cannot forge or hide log lines.

/**
 * C0 and C1 controls and DEL (`\p{Cc}`: NUL, newline, ESC, ...), the Unicode line and paragraph
 * separators, and the bidirectional overrides and isolates (which reorder how a line reads).
 */
const UNPRINTABLE = /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;

/** `text` with every character of {@link UNPRINTABLE} written as `\uXXXX`. */
export function printable(text: string): string {
  return text.replace(
    UNPRINTABLE,
    (c) => `\\u${(c.codePointAt(0) as number).toString(16).padStart(4, "0")}`,
  );
}
