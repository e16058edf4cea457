// `npm run simulate`, then `npm run query` with each saved query, held to the test's own
// aggregation of the records the simulation delivered: dev's JSON lines read as text, prod's
// Parquet objects (partitioned by thing) decoded row by row and aggregated here in JavaScript.
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { PROJECT_DIR, TS_NODE_FLAGS } from "../../core/project";
import { parseQueryArgs, runQuery, type QueryOptions } from "../../simulator/query";

interface Reading {
  thing: string;
  timestamp: number;
  temperature: number;
  max_temperature: number;
  min_temperature: number;
}

function simulate(stack: string, stateDir: string, extra: string[]): string {
  const r = spawnSync(
    process.execPath,
    [
      ...TS_NODE_FLAGS,
      path.join(PROJECT_DIR, "simulator", "cli.ts"),
      "simulate",
      "--stack",
      stack,
      "--state-dir",
      stateDir,
      "--no-probe",
      ...extra,
    ],
    { cwd: PROJECT_DIR, encoding: "utf8", timeout: 90_000 },
  );
  assert.equal(r.status, 0, `simulate failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** The delivered objects' files under the table's folder. */
function objects(stateDir: string, bucket: string): string[] {
  const dir = path.join(stateDir, "s3", bucket, "telemetry");
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .map((f) => path.join(dir, f))
    .filter((f) => fs.statSync(f).isFile() && !path.basename(f).startsWith("."));
}

async function query(
  stack: string,
  stateDir: string,
  saved: string,
): Promise<Record<string, unknown>[]> {
  const opts = parseQueryArgs([
    "--stack",
    stack,
    "--state-dir",
    stateDir,
    "--saved",
    saved,
    "--format",
    "json",
  ]);
  assert.notEqual(opts, "help");
  const lines: string[] = [];
  const errors: string[] = [];
  const code = await runQuery(
    opts as QueryOptions,
    (l) => lines.push(l),
    (l) => errors.push(l),
  );
  assert.equal(code, 0, errors.join("\n"));
  assert.deepEqual(errors, []);
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** `2026-12-02 17:16:10+00` (DuckDB's TIMESTAMPTZ text in a UTC session) as epoch ms. */
const epoch = (v: unknown) => Date.parse(String(v).replace(" ", "T").replace(/\+00$/, "Z"));

/** The saved queries' answers, computed here from the readings. */
function expected(readings: readonly Reading[]) {
  const windows = new Map<number, { max: number; min: number; n: number }>();
  for (const r of readings) {
    const start = r.timestamp - (r.timestamp % 10_000);
    const w = windows.get(start) ?? { max: -Infinity, min: Infinity, n: 0 };
    windows.set(start, {
      max: Math.max(w.max, r.max_temperature),
      min: Math.min(w.min, r.min_temperature),
      n: w.n + 1,
    });
  }
  const latest = new Map<string, Reading>();
  for (const r of readings) {
    const l = latest.get(r.thing);
    if (
      l === undefined ||
      r.timestamp > l.timestamp ||
      (r.timestamp === l.timestamp && r.temperature > l.temperature)
    ) {
      latest.set(r.thing, r);
    }
  }
  const hours = new Map<string, number>();
  for (const r of readings) {
    const k = `${r.timestamp - (r.timestamp % 3_600_000)}|${r.thing}`;
    hours.set(k, (hours.get(k) ?? 0) + 1);
  }
  return {
    windows: [...windows].sort(([a], [b]) => a - b).map(([start, w]) => ({ start, ...w })),
    latest: [...latest.values()].sort((a, b) => a.thing.localeCompare(b.thing)),
    hours: [...hours]
      .map(([k, n]) => ({ hour: Number(k.split("|")[0]), thing: k.split("|")[1], n }))
      .sort((a, b) => a.hour - b.hour || a.thing.localeCompare(b.thing)),
  };
}

async function assertSavedQueries(stack: string, stateDir: string, readings: readonly Reading[]) {
  const want = expected(readings);
  const windows = await query(stack, stateDir, "window-min-max");
  assert.deepEqual(
    windows.map((w) => ({
      start: epoch(w.window_start),
      max: w.max_temp,
      min: w.min_temp,
      n: Number(w.records),
    })),
    want.windows,
  );
  const latest = await query(stack, stateDir, "latest-reading-per-thing");
  assert.deepEqual(
    latest.map((l) => ({
      thing: l.thing,
      timestamp: Number(l.timestamp),
      temperature: l.temperature,
    })),
    want.latest.map((l) => ({
      thing: l.thing,
      timestamp: l.timestamp,
      temperature: l.temperature,
    })),
  );
  const hours = await query(stack, stateDir, "readings-per-hour");
  assert.deepEqual(
    hours.map((h) => ({ hour: epoch(h.hour), thing: h.thing, n: Number(h.readings) })),
    want.hours,
  );
}

describe("npm run simulate, then npm run query with the saved queries", function () {
  this.timeout(180_000);
  let stateDir: string;
  before(() => {
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "lake-e2e-"));
  });
  after(() => fs.rmSync(stateDir, { recursive: true, force: true }));

  it("dev (JSON lines): the saved queries answer what the delivered lines say", async () => {
    const out = simulate("dev", stateDir, ["--fast", "--rate", "5", "--duration", "4"]);
    const delivered = Number(/records delivered\s+(\d+)/.exec(out)?.[1]);
    const readings = objects(stateDir, "iot-pipeline-dev-local").flatMap((f) =>
      fs
        .readFileSync(f, "utf8")
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as Reading),
    );
    assert.ok(readings.length >= 10, `expected readings, got ${readings.length}`);
    assert.equal(readings.length, delivered, "every delivered record is in the objects");
    await assertSavedQueries("dev", stateDir, readings);
  });

  it("prod (Parquet, partitioned by thing): the saved queries answer what the Parquet rows say", async () => {
    const out = simulate("prod", stateDir, ["--fast", "--rate", "3", "--duration", "4"]);
    const delivered = Number(/records delivered\s+(\d+)/.exec(out)?.[1]);
    const files = objects(stateDir, "iot-pipeline-prod-local");
    assert.ok(files.length >= 3, "one object per thing at least");
    const readings: Reading[] = [];
    const db = await DuckDBInstance.create(":memory:");
    const c = await db.connect();
    try {
      for (const f of files) {
        assert.match(
          f,
          /telemetry\/device=store-sensor-seattle\d\/\d{4}\/\d\d\/\d\d\/\d\d\/weather-data-stream-1-.*\.parquet$/,
        );
        // DuckDB only decodes the file; the aggregation is the test's own.
        const rows = (
          await c.runAndReadAll(`SELECT * FROM read_parquet('${f}')`)
        ).getRowObjectsJS();
        for (const r of rows) {
          const device = /device=([^/]+)\//.exec(f)?.[1];
          assert.equal(r.thing, device, "each record lies in its thing's partition");
          readings.push({
            thing: String(r.thing),
            timestamp: Number(r.timestamp),
            temperature: Number(r.temperature),
            max_temperature: Number(r.max_temperature),
            min_temperature: Number(r.min_temperature),
          });
        }
      }
    } finally {
      c.closeSync();
      db.closeSync();
    }
    assert.ok(readings.length >= 10, `expected readings, got ${readings.length}`);
    assert.equal(readings.length, delivered, "every delivered record is in the Parquet objects");
    await assertSavedQueries("prod", stateDir, readings);
  });
});
