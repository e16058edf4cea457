// Reading back what a local delivery stream wrote: its objects (GZIP or not) as text, as records,
// and as the record numbers `{"i": n}` the stream tests put in.
import * as fs from "node:fs";
import * as zlib from "node:zlib";
import { FIREHOSE_RECORD_SEPARATOR } from "../../core/delivery";

/** One delivered object's text, gunzipped when its name ends in `.gz`. */
export function readObject(file: string): string {
  const body = fs.readFileSync(file);
  return (file.endsWith(".gz") ? zlib.gunzipSync(body) : body).toString("utf8");
}

/** Every record of the objects, in order, as the text between separators. */
export function deliveredLines(files: readonly string[]): string[] {
  return files.flatMap((f) => readObject(f).split(FIREHOSE_RECORD_SEPARATOR).filter(Boolean));
}

/** The `i` of every record `{"i": n}` of the objects, in order, as a number. */
export function deliveredNumbers(files: readonly string[]): number[] {
  return deliveredLines(files).map((l) => Number((JSON.parse(l) as { i: number | string }).i));
}
