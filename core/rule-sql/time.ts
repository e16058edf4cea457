// Dates for parse_time() (Joda-Time format patterns) and time_to_epoch() (JDK 11
// DateTimeFormatter patterns), with time zones from the platform's Intl data.

const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];
const DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/** A pattern that cannot be used: the function's result is then Undefined. */
class PatternError extends Error {}

type Token = { readonly letter: string; readonly count: number } | { readonly text: string };

const tokenCache = new Map<string, Token[]>();

/** Splits a pattern into runs of one letter and literal text ('quoted', '' for a quote). */
function tokenize(pattern: string, letters: RegExp): Token[] {
  const cached = tokenCache.get(pattern);
  if (cached) return cached;
  const out: Token[] = [];
  for (let i = 0; i < pattern.length;) {
    const c = pattern[i];
    if (c === "'") {
      if (pattern[i + 1] === "'") {
        out.push({ text: "'" });
        i += 2;
        continue;
      }
      const end = pattern.indexOf("'", i + 1);
      if (end < 0) throw new PatternError("unterminated quote");
      out.push({ text: pattern.slice(i + 1, end) });
      i = end + 1;
    } else if (/[A-Za-z]/.test(c)) {
      if (!letters.test(c)) throw new PatternError(`unknown pattern letter ${c}`);
      let j = i;
      while (pattern[j] === c) j++;
      out.push({ letter: c, count: j - i });
      i = j;
    } else {
      out.push({ text: c });
      i++;
    }
  }
  if (tokenCache.size > 256) tokenCache.clear();
  tokenCache.set(pattern, out);
  return out;
}

// ---- zones ---------------------------------------------------------------------------------

const OFFSET_ZONE = /^(?:UTC|GMT|UT)?([+-])(\d{1,2})(?::?(\d{2}))?$/;

/** A fixed offset in minutes for `+01:00`, `UTC+1`, `GMT-05:30`; undefined for a region id. */
function fixedOffset(zone: string): number | undefined {
  if (zone === "UTC" || zone === "GMT" || zone === "Z" || zone === "UT") return 0;
  const m = OFFSET_ZONE.exec(zone);
  if (!m) return undefined;
  const minutes = Number(m[2]) * 60 + Number(m[3] ?? 0);
  return m[1] === "-" ? -minutes : minutes;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(zone: string, zoneName: "short" | "long" = "short"): Intl.DateTimeFormat {
  const key = `${zone}|${zoneName}`;
  let f = formatters.get(key);
  if (!f) {
    // Throws RangeError for a zone the platform does not know.
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
      era: "short",
      timeZoneName: zoneName,
    });
    if (formatters.size > 256) formatters.clear();
    formatters.set(key, f);
  }
  return f;
}

/** The zone's offset from UTC in minutes at instant `ms`. */
function offsetAt(zone: string, ms: number): number {
  const fixed = fixedOffset(zone);
  if (fixed !== undefined) return fixed;
  const parts = formatter(zone).formatToParts(ms);
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value);
  let year = get("year");
  if (parts.find((p) => p.type === "era")?.value === "BC") year = 1 - year;
  const local = Date.UTC(
    year,
    get("month") - 1,
    get("day"),
    get("hour"),
    get("minute"),
    get("second"),
  );
  return Math.round((local - (ms - (((ms % 1000) + 1000) % 1000))) / 60000);
}

function zoneName(zone: string, ms: number, style: "short" | "long"): string {
  const fixed = fixedOffset(zone);
  if (fixed !== undefined) return fixed === 0 ? "UTC" : formatOffset(fixed, true);
  return (
    formatter(zone, style)
      .formatToParts(ms)
      .find((p) => p.type === "timeZoneName")?.value ?? zone
  );
}

function formatOffset(minutes: number, colon: boolean): string {
  const sign = minutes < 0 ? "-" : "+";
  const a = Math.abs(minutes);
  return `${sign}${pad(Math.floor(a / 60), 2)}${colon ? ":" : ""}${pad(a % 60, 2)}`;
}

/** Whether the platform knows the zone (Joda and java.time both use the IANA database). */
export function isKnownZone(zone: string): boolean {
  if (fixedOffset(zone) !== undefined) return true;
  try {
    formatter(zone);
    return true;
  } catch {
    return false;
  }
}

// ---- parse_time: formatting ----------------------------------------------------------------

function pad(n: number, width: number): string {
  const s = String(Math.abs(n)).padStart(width, "0");
  return n < 0 ? `-${s}` : s;
}

interface Fields {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  millis: number;
  /** 1 = Monday … 7 = Sunday */
  weekday: number;
  dayOfYear: number;
}

function fieldsAt(ms: number, offsetMinutes: number): Fields {
  const d = new Date(ms + offsetMinutes * 60000);
  const year = d.getUTCFullYear();
  const start = Date.UTC(year, 0, 1);
  return {
    year,
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
    millis: d.getUTCMilliseconds(),
    weekday: ((d.getUTCDay() + 6) % 7) + 1,
    dayOfYear: Math.floor((Date.UTC(year, d.getUTCMonth(), d.getUTCDate()) - start) / 86400000) + 1,
  };
}

/** ISO week-based year and week of `f` (Joda's x and w). */
function isoWeek(f: Fields): { weekyear: number; week: number } {
  const date = Date.UTC(f.year, f.month - 1, f.day);
  const thursday = date + (4 - f.weekday) * 86400000;
  const weekyear = new Date(thursday).getUTCFullYear();
  const week = Math.floor((thursday - Date.UTC(weekyear, 0, 1)) / (7 * 86400000)) + 1;
  return { weekyear, week };
}

const JODA_LETTERS = /[GCYxwedEDMyaKhHkmsSzZ]/;

/**
 * parse_time(pattern, timestamp, zone): the instant formatted with a Joda-Time pattern in the
 * zone (default UTC). Undefined for an unknown pattern letter or zone.
 */
export function formatJoda(pattern: string, ms: number, zone = "UTC"): string | undefined {
  try {
    if (!isKnownZone(zone)) return undefined;
    const tokens = tokenize(pattern, JODA_LETTERS);
    const offset = offsetAt(zone, ms);
    const f = fieldsAt(ms, offset);
    let out = "";
    for (const t of tokens) {
      if ("text" in t) {
        out += t.text;
        continue;
      }
      const n = t.count;
      const yearOfEra = f.year <= 0 ? 1 - f.year : f.year;
      switch (t.letter) {
        case "G":
          out += f.year <= 0 ? "BC" : "AD";
          break;
        case "C":
          out += pad(Math.floor(yearOfEra / 100), n);
          break;
        case "Y":
        case "y": {
          const y = t.letter === "Y" ? yearOfEra : f.year;
          out += n === 2 ? pad(((y % 100) + 100) % 100, 2) : pad(y, n);
          break;
        }
        case "x": {
          const { weekyear } = isoWeek(f);
          out += n === 2 ? pad(weekyear % 100, 2) : pad(weekyear, n);
          break;
        }
        case "w":
          out += pad(isoWeek(f).week, n);
          break;
        case "e":
          out += pad(f.weekday, n);
          break;
        case "E":
          out += n >= 4 ? DAYS[f.weekday - 1] : DAYS[f.weekday - 1].slice(0, 3);
          break;
        case "D":
          out += pad(f.dayOfYear, n);
          break;
        case "M":
          out +=
            n >= 4
              ? MONTHS[f.month - 1]
              : n === 3
                ? MONTHS[f.month - 1].slice(0, 3)
                : pad(f.month, n);
          break;
        case "d":
          out += pad(f.day, n);
          break;
        case "a":
          out += f.hour < 12 ? "AM" : "PM";
          break;
        case "K":
          out += pad(f.hour % 12, n);
          break;
        case "h":
          out += pad(f.hour % 12 === 0 ? 12 : f.hour % 12, n);
          break;
        case "H":
          out += pad(f.hour, n);
          break;
        case "k":
          out += pad(f.hour === 0 ? 24 : f.hour, n);
          break;
        case "m":
          out += pad(f.minute, n);
          break;
        case "s":
          out += pad(f.second, n);
          break;
        case "S":
          // Fraction of the second to n digits (Joda truncates beyond milliseconds' precision).
          out += pad(f.millis, 3).padEnd(n, "0").slice(0, n);
          break;
        case "z":
          out += zoneName(zone, ms, n >= 4 ? "long" : "short");
          break;
        case "Z":
          out += n >= 3 ? zone : formatOffset(offset, n === 2);
          break;
      }
    }
    return out;
  } catch (e) {
    if (e instanceof PatternError || e instanceof RangeError) return undefined;
    throw e;
  }
}

// ---- time_to_epoch: parsing ----------------------------------------------------------------

const JDK_LETTERS = /[GuyMLdHhKkmsSnaEVzOXxZ]/;

// Zone names a parse may meet that are not IANA ids; java.time resolves them the same way.
const ZONE_ABBREVIATIONS: Record<string, string> = {
  UTC: "UTC",
  GMT: "UTC",
  Z: "UTC",
  PST: "America/Los_Angeles",
  PDT: "America/Los_Angeles",
  MST: "America/Denver",
  MDT: "America/Denver",
  CST: "America/Chicago",
  CDT: "America/Chicago",
  EST: "America/New_York",
  EDT: "America/New_York",
  CET: "Europe/Paris",
  CEST: "Europe/Paris",
};

/**
 * time_to_epoch(timestamp, pattern): the text read with a JDK 11 DateTimeFormatter pattern, in
 * UTC when it names no zone, as epoch milliseconds. Undefined when the text does not match.
 */
export function parseJdk(text: string, pattern: string): number | undefined {
  let tokens: Token[];
  try {
    tokens = tokenize(pattern, JDK_LETTERS);
  } catch (e) {
    if (e instanceof PatternError) return undefined;
    throw e;
  }
  let pos = 0;
  let year = 1970;
  let month = 1;
  let day = 1;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let nanos = 0;
  let pm: boolean | undefined;
  let hour12: number | undefined;
  let zone: string | undefined;
  let offset: number | undefined;
  let bc = false;

  const digits = (min: number, max: number): number | undefined => {
    const m = new RegExp(`^\\d{${min},${max}}`).exec(text.slice(pos));
    if (!m) return undefined;
    pos += m[0].length;
    return Number(m[0]);
  };
  const word = (choices: readonly string[]): number | undefined => {
    // Longest first, so that "May" does not stop "March" … and full names beat short ones.
    const rest = text.slice(pos).toLowerCase();
    let best = -1;
    let bestLen = 0;
    choices.forEach((c, i) => {
      const l = c.toLowerCase();
      if (rest.startsWith(l) && l.length > bestLen) {
        best = i;
        bestLen = l.length;
      }
    });
    if (best < 0) return undefined;
    pos += bestLen;
    return best;
  };

  for (let ti = 0; ti < tokens.length; ti++) {
    const t = tokens[ti];
    if ("text" in t) {
      if (!text.startsWith(t.text, pos)) return undefined;
      pos += t.text.length;
      continue;
    }
    const n = t.count;
    // Adjacent numeric fields (yyyyMMdd) take exactly their width; a lone one takes what is there.
    const next = tokens[ti + 1];
    const adjacent = next !== undefined && "letter" in next;
    const width = (w: number) => (adjacent ? [w, w] : [w, 19]);
    let v: number | undefined;
    switch (t.letter) {
      case "G":
        v = word(["AD", "BC", "Anno Domini", "Before Christ"]);
        if (v === undefined) return undefined;
        bc = v % 2 === 1;
        break;
      case "u":
      case "y": {
        const [min, max] = n === 2 ? [2, 2] : width(n);
        v = digits(min, max);
        if (v === undefined) return undefined;
        year = n === 2 ? 2000 + v : v;
        break;
      }
      case "M":
      case "L":
        if (n >= 3) {
          v = word(n === 3 ? MONTHS.map((m) => m.slice(0, 3)) : MONTHS);
          if (v === undefined) return undefined;
          month = v + 1;
        } else {
          v = digits(...(width(n) as [number, number]));
          if (v === undefined) return undefined;
          month = v;
        }
        break;
      case "d":
      case "H":
      case "h":
      case "K":
      case "k":
      case "m":
      case "s": {
        v = digits(n, adjacent ? n : 2);
        if (v === undefined) return undefined;
        if (t.letter === "d") day = v;
        else if (t.letter === "H" || t.letter === "k") hour = v % 24;
        else if (t.letter === "h" || t.letter === "K") hour12 = v % 12;
        else if (t.letter === "m") minute = v;
        else second = v;
        break;
      }
      case "S": {
        const m = new RegExp(`^\\d{${n}}`).exec(text.slice(pos));
        if (!m) return undefined;
        pos += n;
        nanos = Number(m[0].padEnd(9, "0").slice(0, 9));
        break;
      }
      case "n":
        v = digits(1, 9);
        if (v === undefined) return undefined;
        nanos = v;
        break;
      case "a":
        v = word(["AM", "PM"]);
        if (v === undefined) return undefined;
        pm = v === 1;
        break;
      case "E":
        if (word(n >= 4 ? DAYS : DAYS.map((d) => d.slice(0, 3))) === undefined) return undefined;
        break;
      case "V":
      case "z": {
        const rest = text.slice(pos);
        const m =
          /^(?:UTC|GMT|UT)[+-]\d{1,2}(?::?\d{2})?/.exec(rest) ??
          /^[A-Za-z][A-Za-z0-9_/+-]*/.exec(rest);
        if (!m) return undefined;
        const id = ZONE_ABBREVIATIONS[m[0]] ?? m[0];
        if (!isKnownZone(id)) return undefined;
        pos += m[0].length;
        zone = id;
        break;
      }
      case "O":
      case "X":
      case "x":
      case "Z": {
        const m = /^(?:GMT)?(Z|[+-]\d{2}(?::?\d{2})?)/.exec(text.slice(pos));
        if (!m) return undefined;
        pos += m[0].length;
        offset = m[1] === "Z" ? 0 : fixedOffset(m[1]);
        break;
      }
    }
  }
  if (pos !== text.length) return undefined;
  if (hour12 !== undefined) hour = hour12 + (pm ? 12 : 0);
  else if (pm !== undefined && hour < 12 && pm) hour += 12;
  if (bc) year = 1 - year;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) {
    return undefined;
  }
  const wall = Date.UTC(year, month - 1, day, hour, minute, second) + Math.floor(nanos / 1e6);
  if (new Date(wall).getUTCDate() !== day) return undefined;
  if (offset !== undefined) return wall - offset * 60000;
  if (zone === undefined) return wall;
  // The zone's offset at that wall time: guess from the offset at the wall instant, then correct.
  let guess = wall - offsetAt(zone, wall) * 60000;
  guess = wall - offsetAt(zone, guess) * 60000;
  return guess;
}
