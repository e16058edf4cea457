// The CBOR (RFC 8949) the fleet provisioning API speaks on its `.../cbor` topics: maps with text
// keys, text and byte strings, integers, booleans, null and arrays. Enough for the API's payloads,
// bounded in depth, count and length, and strict: anything else is a CborError, never a guess.
// https://www.rfc-editor.org/rfc/rfc8949.html

/** What this codec reads and writes. */
export type CborValue =
  string | number | boolean | null | Buffer | CborValue[] | { [key: string]: CborValue };

export class CborError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CborError";
  }
}

const MAX_DEPTH = 16;
const MAX_ITEMS = 10_000;

/** Decodes one data item that fills the buffer (RFC 8949 §3); a CborError otherwise. */
export function decodeCbor(data: Buffer): CborValue {
  let pos = 0;
  let items = 0;
  const need = (n: number) => {
    if (pos + n > data.length) throw new CborError("the data ends inside an item");
  };
  const argument = (info: number): number => {
    if (info < 24) return info;
    const size = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0;
    // 28-30 are reserved; 31 (indefinite length) is not used by the API's payloads.
    if (size === 0) throw new CborError(`additional information ${info} is not supported`);
    need(size);
    let v: number;
    if (size === 8) {
      const big = data.readBigUInt64BE(pos);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new CborError("an integer beyond 2^53");
      v = Number(big);
    } else {
      v = data.readUIntBE(pos, size);
    }
    pos += size;
    return v;
  };
  const item = (depth: number): CborValue => {
    if (depth > MAX_DEPTH) throw new CborError(`nested deeper than ${MAX_DEPTH}`);
    if (++items > MAX_ITEMS) throw new CborError(`more than ${MAX_ITEMS} items`);
    need(1);
    const head = data[pos++];
    const major = head >> 5;
    const info = head & 0x1f;
    switch (major) {
      case 0:
        return argument(info);
      case 1:
        return -1 - argument(info);
      case 2:
      case 3: {
        const n = argument(info);
        need(n);
        const bytes = data.subarray(pos, pos + n);
        pos += n;
        if (major === 2) return Buffer.from(bytes);
        const text = new TextDecoder("utf-8", { fatal: true });
        try {
          return text.decode(bytes);
        } catch {
          throw new CborError("a text string that is not UTF-8");
        }
      }
      case 4: {
        const n = argument(info);
        if (n > MAX_ITEMS) throw new CborError(`an array of ${n} items`);
        return Array.from({ length: n }, () => item(depth + 1));
      }
      case 5: {
        const n = argument(info);
        if (n > MAX_ITEMS) throw new CborError(`a map of ${n} pairs`);
        const out: { [key: string]: CborValue } = {};
        for (let i = 0; i < n; i++) {
          const key = item(depth + 1);
          if (typeof key !== "string") throw new CborError("a map key that is not a text string");
          if (Object.prototype.hasOwnProperty.call(out, key)) {
            throw new CborError(`the map key ${JSON.stringify(key)} appears twice`);
          }
          out[key] = item(depth + 1);
        }
        return out;
      }
      case 7:
        if (info === 20) return false;
        if (info === 21) return true;
        if (info === 22) return null;
        throw new CborError(`simple value or float ${info} is not supported`);
      default:
        throw new CborError(`major type ${major} (tags) is not supported`);
    }
  };
  const value = item(0);
  if (pos !== data.length) throw new CborError(`${data.length - pos} byte(s) after the item`);
  return value;
}

function head(major: number, n: number): Buffer {
  if (n < 24) return Buffer.from([(major << 5) | n]);
  if (n < 0x100) return Buffer.from([(major << 5) | 24, n]);
  if (n < 0x10000) {
    const b = Buffer.alloc(3);
    b[0] = (major << 5) | 25;
    b.writeUInt16BE(n, 1);
    return b;
  }
  if (n < 0x100000000) {
    const b = Buffer.alloc(5);
    b[0] = (major << 5) | 26;
    b.writeUInt32BE(n, 1);
    return b;
  }
  const b = Buffer.alloc(9);
  b[0] = (major << 5) | 27;
  b.writeBigUInt64BE(BigInt(n), 1);
  return b;
}

/** Encodes a value in CBOR's preferred (shortest) form; integers only, no floats. */
export function encodeCbor(value: CborValue): Buffer {
  const parts: Buffer[] = [];
  const put = (v: CborValue, depth: number): void => {
    if (depth > MAX_DEPTH) throw new CborError(`nested deeper than ${MAX_DEPTH}`);
    if (v === null) parts.push(Buffer.from([0xf6]));
    else if (v === false) parts.push(Buffer.from([0xf4]));
    else if (v === true) parts.push(Buffer.from([0xf5]));
    else if (typeof v === "number") {
      if (!Number.isSafeInteger(v)) throw new CborError(`${v} is not an integer this codec writes`);
      parts.push(v >= 0 ? head(0, v) : head(1, -1 - v));
    } else if (typeof v === "string") {
      const bytes = Buffer.from(v, "utf8");
      parts.push(head(3, bytes.length), bytes);
    } else if (Buffer.isBuffer(v)) {
      parts.push(head(2, v.length), v);
    } else if (Array.isArray(v)) {
      parts.push(head(4, v.length));
      for (const x of v) put(x, depth + 1);
    } else {
      const entries = Object.entries(v);
      parts.push(head(5, entries.length));
      for (const [k, x] of entries) {
        put(k, depth + 1);
        put(x, depth + 1);
      }
    }
  };
  put(value, 0);
  return Buffer.concat(parts);
}
