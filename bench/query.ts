// Figure 6: `npm run query` over a local lake — readings scanned per second by the saved
// window-min-max query (every row read, MAX/MIN per 10-s window) through the engine behind the
// command (local/lake/lake-query.ts), over the same readings as JSON lines (dev's layout) and as
// Parquet partitioned by thing (prod's), against a plain Node loop that reads the JSON-lines
// files, parses each line and aggregates the same windows, in the same run.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { savedQueries } from "../core/lake";
import { loadStackConfig, type StackConfig } from "../core/stack-config";
import { LocalLake } from "../local/lake/lake-query";
import { localBucketName } from "../local/storage/s3";
import type { FigureOptions, FigureOutcome } from "./figure";
import { reading } from "./payloads";
import { target, type Metric } from "./report";
import { median, peakRssMiB, round } from "./stats";

const THINGS = ["store-sensor-seattle1", "store-sensor-seattle2", "store-sensor-seattle3"];
/** Readings per object: Firehose's objects at one reading a second per thing are about this size. */
const PER_OBJECT = 10_000;
const START = Date.UTC(2026, 10, 26, 0, 0, 0);

const pad = (n: number) => String(n).padStart(2, "0");
const hourPath = (t: number) => {
  const d = new Date(t);
  return `${d.getUTCFullYear()}/${pad(d.getUTCMonth() + 1)}/${pad(d.getUTCDate())}/${pad(d.getUTCHours())}`;
};

/** Writes `count` readings (one per 100 ms, round-robin over the things) as both lakes. */
async function makeLakes(root: string, count: number, dev: StackConfig, prod: StackConfig) {
  const jsonDir = path.join(root, "json", "s3", localBucketName(dev), "telemetry");
  const parquetDir = path.join(root, "parquet", "s3", localBucketName(prod), "telemetry");
  const files: string[] = [];
  const db = await DuckDBInstance.create(":memory:");
  const c = await db.connect();
  let bytes = 0;
  try {
    for (let first = 0, n = 0; first < count; first += PER_OBJECT, n++) {
      const rows = Array.from({ length: Math.min(PER_OBJECT, count - first) }, (_, j) => {
        const i = first + j;
        return reading(THINGS[i % THINGS.length], i, START + i * 100);
      });
      const t = rows[0].timestamp;
      const dir = path.join(jsonDir, hourPath(t));
      fs.mkdirSync(dir, { recursive: true });
      const file = path.join(dir, `weather-data-stream-1-object-${n}`);
      const text = rows.map((r) => JSON.stringify(r)).join("\n") + "\n";
      fs.writeFileSync(file, text);
      bytes += text.length;
      files.push(file);
      // The same readings as Parquet, one object per thing and source object, in device= folders.
      for (const thing of THINGS) {
        const out = path.join(parquetDir, `device=${thing}`, hourPath(t));
        fs.mkdirSync(out, { recursive: true });
        await c.run(
          `COPY (SELECT * FROM read_json('${file}', format = 'newline_delimited', columns = {thing: 'VARCHAR', "timestamp": 'BIGINT', temperature: 'DOUBLE', max_temperature: 'DOUBLE', min_temperature: 'DOUBLE', humidity: 'DOUBLE'}) WHERE thing = '${thing}') TO '${path.join(out, `weather-data-stream-1-object-${n}.parquet`)}' (FORMAT parquet, COMPRESSION snappy)`,
        );
      }
    }
  } finally {
    c.closeSync();
    db.closeSync();
  }
  return { files, jsonBytes: bytes };
}

/** The baseline: read each file, split lines, JSON.parse, MAX/MIN per 10-s window. */
function nodeLoop(files: readonly string[]): Map<number, { max: number; min: number; n: number }> {
  const windows = new Map<number, { max: number; min: number; n: number }>();
  for (const f of files) {
    const text = fs.readFileSync(f, "utf8");
    let at = 0;
    while (at < text.length) {
      let end = text.indexOf("\n", at);
      if (end < 0) end = text.length;
      if (end > at) {
        const r = JSON.parse(text.slice(at, end)) as {
          timestamp: number;
          max_temperature: number;
          min_temperature: number;
        };
        const start = r.timestamp - (r.timestamp % 10_000);
        const w = windows.get(start);
        if (w === undefined)
          windows.set(start, { max: r.max_temperature, min: r.min_temperature, n: 1 });
        else {
          if (r.max_temperature > w.max) w.max = r.max_temperature;
          if (r.min_temperature < w.min) w.min = r.min_temperature;
          w.n++;
        }
      }
      at = end + 1;
    }
  }
  return windows;
}

export async function run(opts: FigureOptions): Promise<FigureOutcome> {
  const count = opts.quick ? 30_000 : 1_000_000;
  const rounds = opts.quick ? 1 : 3;
  const dev = loadStackConfig("dev");
  const prod = loadStackConfig("prod");
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "bench-query-"));
  try {
    opts.log(`writing ${count} readings as JSON lines and as Parquet under ${root}`);
    const { files, jsonBytes } = await makeLakes(root, count, dev, prod);
    const sql = savedQueries(10).find((q) => q.name === "window-min-max")?.sql as string;

    const baseline: number[] = [];
    let expected = new Map<number, { max: number; min: number; n: number }>();
    const timeQuery = async (config: StackConfig, stateDir: string): Promise<number> => {
      const t = performance.now();
      // Opening is part of every `npm run query`: listing the objects and defining the view.
      const lake = await LocalLake.open(config, { stateDir });
      try {
        const r = await lake.query(sql, { maxRows: 1_000_000 });
        const seconds = (performance.now() - t) / 1000;
        // The answer must be the baseline's: same windows, same MAX/MIN, same counts.
        const records = r.rows.reduce((s, row) => s + Number(row[3]), 0);
        if (r.rows.length !== expected.size || records !== count) {
          throw new Error(
            `the query over ${config.stack}'s lake found ${r.rows.length} windows and ${records} readings; the Node loop ${expected.size} and ${count}`,
          );
        }
        return count / seconds;
      } finally {
        lake.close();
      }
    };
    const json: number[] = [];
    const parquet: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const t = performance.now();
      expected = nodeLoop(files);
      baseline.push(count / ((performance.now() - t) / 1000));
      json.push(await timeQuery(dev, path.join(root, "json")));
      parquet.push(await timeQuery(prod, path.join(root, "parquet")));
    }
    const b = median(baseline);
    const j = median(json);
    const p = median(parquet);
    const parquetBytes = (
      fs.readdirSync(path.join(root, "parquet"), { recursive: true }) as string[]
    )
      .map((f) => path.join(root, "parquet", f))
      .filter((f) => fs.statSync(f).isFile())
      .reduce((s, f) => s + fs.statSync(f).size, 0);
    opts.log(
      `${count} readings × ${rounds} rounds: Node loop ${Math.round(b)}/s, query over JSON lines ${Math.round(j)}/s, over Parquet ${Math.round(p)}/s`,
    );
    const metrics: Metric[] = [
      { key: "readings", label: "readings in the lake", value: count, unit: "" },
      {
        key: "jsonMiB",
        label: "JSON lines on disk",
        value: round(jsonBytes / 2 ** 20),
        unit: "MiB",
      },
      {
        key: "parquetMiB",
        label: "the same as Parquet (snappy)",
        value: round(parquetBytes / 2 ** 20),
        unit: "MiB",
      },
      {
        key: "baseline.rowsPerSec",
        label: "baseline: Node loop over the JSON lines",
        value: round(b),
        unit: "/s",
      },
      {
        key: "json.rowsPerSec",
        label: "npm run query over JSON lines",
        value: round(j),
        unit: "/s",
      },
      { key: "json.ratio", label: "JSON lines query ÷ Node loop", value: round(j / b), unit: "" },
      {
        key: "parquet.rowsPerSec",
        label: "npm run query over Parquet",
        value: round(p),
        unit: "/s",
      },
      { key: "parquet.ratio", label: "Parquet query ÷ Node loop", value: round(p / b), unit: "" },
      { key: "peakRssMiB", label: "peak RSS", value: round(peakRssMiB()), unit: "MiB" },
    ];
    return {
      status: "measured",
      params: {
        readings: count,
        rounds,
        things: THINGS.length,
        perObject: PER_OBJECT,
        query: "window-min-max",
      },
      metrics,
      // The query engine is there to beat what a script would do by hand.
      targets: [
        target("query over JSON lines faster than the Node loop", "json.ratio", ">=", 1, j / b),
      ],
      notes: [
        "Each query rate includes opening the lake (listing the objects, defining the view) and the saved window-min-max query over every reading, timed in wall-clock seconds; DuckDB uses every core, the Node loop one.",
        "The Node loop is the baseline for both: Node has no Parquet reader of its own, so the Parquet figure is held to the loop over the same readings as JSON lines.",
        "Each round checks that the query found the loop's windows and every reading.",
      ],
    };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}
