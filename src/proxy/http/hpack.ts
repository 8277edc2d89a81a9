/**
 * An HPACK decoder (RFC 7541): integers with an N-bit prefix, string literals (plain or
 * Huffman), the static table and a dynamic table with its size limit, size updates and
 * eviction. It only decodes; it never allocates per field except to copy a field into the
 * dynamic table. Pure: no I/O.
 *
 * The proxy's HTTP/2 connections (h2-conn.ts) decode every header block with it. Its dynamic
 * table must stay exactly in step with the peer's encoder, so every block of a connection is
 * decoded, in order, whatever becomes of its stream.
 */
import { huffmanDecode, huffmanMaxLength } from './hpack-huffman.js';

/**
 * What a caller may keep on a table entry (static or dynamic) about its field, so a field
 * sent as an index again (most fields of a connection's later requests) is not converted and
 * checked again.
 */
export interface EntryMemo {
  name: string;
  value: string;
  valid: boolean;
}

/** A static or dynamic table entry, given to the visitor for fully indexed fields. */
export interface TableEntry {
  readonly name: Buffer;
  readonly value: Buffer;
  memo: EntryMemo | undefined;
}

/**
 * Told each decoded field; the buffers are only valid during the call. `entry` is the table
 * entry of a fully indexed field (6.1), whose `memo` the visitor may fill and reuse.
 */
export type FieldVisitor = (name: Buffer, value: Buffer, entry?: TableEntry) => void;

/** RFC 7541 Appendix A. */
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

type Field = TableEntry;

const STATIC: readonly Field[] = STATIC_TABLE.map(([n, v]) => ({
  name: Buffer.from(n, 'latin1'),
  value: Buffer.from(v, 'latin1'),
  memo: undefined,
}));

/** RFC 7541 4.1: an entry's size is its name and value lengths plus 32. */
const ENTRY_OVERHEAD = 32;

/** Integers past this are refused (no header block needs them; they would lose precision). */
const MAX_INTEGER = 0x7fffffff;

const EMPTY = Buffer.alloc(0);
/** Huffman scratch buffers grow up to this and no further. */
const MAX_KEPT_SCRATCH = 8192;

/** Thrown inside decode() only, and turned into its result there. */
class HpackError {
  constructor(readonly message: string) {}
}

export class HpackDecoder {
  /** Newest entry last. */
  readonly #entries: Field[] = [];
  #size = 0;
  /** The size the encoder chose (dynamic table size update)... */
  #maxSize: number;
  /** ...which may not exceed what the decoder's side allowed (SETTINGS_HEADER_TABLE_SIZE). */
  readonly #limit: number;
  #block: Buffer = EMPTY;
  #pos = 0;
  /** Huffman output for the name and the value of one field. */
  #nameScratch: Buffer = Buffer.alloc(256);
  #valueScratch: Buffer = Buffer.alloc(256);

  constructor(headerTableSize = 4096) {
    this.#maxSize = headerTableSize;
    this.#limit = headerTableSize;
  }

  /** The dynamic table's size in RFC 7541 terms, and its entries newest first (for tests). */
  get tableSize(): number {
    return this.#size;
  }
  /** The table's maximum size, as the last dynamic table size update set it. */
  get maxTableSize(): number {
    return this.#maxSize;
  }
  tableEntries(): [string, string][] {
    return this.#entries
      .map((e) => [e.name.toString('latin1'), e.value.toString('latin1')] as [string, string])
      .reverse();
  }

  /**
   * Decodes one complete header block, telling `visit` each field in order. Returns undefined,
   * or why the block cannot be decoded (a COMPRESSION_ERROR: the connection must end; the
   * table is then in no defined state).
   */
  decode(block: Buffer, visit: FieldVisitor): string | undefined {
    this.#block = block;
    this.#pos = 0;
    try {
      let fields = 0;
      while (this.#pos < block.length) {
        const b = block[this.#pos]!;
        if (b & 0x80) {
          // 6.1 Indexed Header Field.
          const f = this.#field(this.#integer(7));
          visit(f.name, f.value, f);
        } else if (b & 0x40) {
          // 6.2.1 Literal with Incremental Indexing.
          const index = this.#integer(6);
          const name = index === 0 ? this.#string(this.#nameScratch) : this.#field(index).name;
          const value = this.#string(this.#valueScratch);
          visit(name, value);
          this.#add(name, value);
        } else if (b & 0x20) {
          // 6.3 Dynamic Table Size Update: only before the first field of a block (4.2).
          if (fields > 0) throw new HpackError('dynamic table size update after a field');
          const size = this.#integer(5);
          if (size > this.#limit)
            throw new HpackError(`dynamic table size ${size} above the limit ${this.#limit}`);
          this.#maxSize = size;
          this.#evict(0);
          continue;
        } else {
          // 6.2.2 without indexing (0000), 6.2.3 never indexed (0001): 4-bit prefix.
          const index = this.#integer(4);
          const name = index === 0 ? this.#string(this.#nameScratch) : this.#field(index).name;
          visit(name, this.#string(this.#valueScratch));
        }
        fields++;
      }
      return undefined;
    } catch (e) {
      if (e instanceof HpackError) return e.message;
      throw e;
    } finally {
      this.#block = EMPTY;
    }
  }

  /** 5.1: an integer with an N-bit prefix, starting in the current octet. */
  #integer(prefixBits: number): number {
    const block = this.#block;
    const max = (1 << prefixBits) - 1;
    let value = block[this.#pos++]! & max;
    if (value < max) return value;
    let shift = 0;
    for (;;) {
      if (this.#pos >= block.length) throw new HpackError('truncated integer');
      const b = block[this.#pos++]!;
      value += (b & 0x7f) * 2 ** shift;
      if (value > MAX_INTEGER) throw new HpackError('integer too large');
      if ((b & 0x80) === 0) return value;
      shift += 7;
    }
  }

  /** 5.2: a string literal, as a view of the block or (Huffman) of `scratch`. */
  #string(scratch: Buffer): Buffer {
    const block = this.#block;
    if (this.#pos >= block.length) throw new HpackError('truncated string');
    const huffman = (block[this.#pos]! & 0x80) !== 0;
    const length = this.#integer(7);
    if (length > block.length - this.#pos) throw new HpackError('string longer than the block');
    const raw = block.subarray(this.#pos, this.#pos + length);
    this.#pos += length;
    if (!huffman) return raw;
    let out: Buffer = scratch;
    const need = huffmanMaxLength(length);
    if (need > out.length) {
      out = Buffer.allocUnsafe(need);
      // Kept for the next field unless it is unusually large (memory per connection).
      if (need <= MAX_KEPT_SCRATCH) {
        if (scratch === this.#nameScratch) this.#nameScratch = out;
        else this.#valueScratch = out;
      }
    }
    const n = huffmanDecode(raw, out);
    if (n < 0) throw new HpackError('invalid Huffman string');
    return out.subarray(0, n);
  }

  /** 2.3.3: index 1-61 is the static table, 62 on the dynamic table (newest first). */
  #field(index: number): Field {
    if (index === 0) throw new HpackError('index 0');
    if (index <= STATIC.length) return STATIC[index - 1]!;
    const d = index - STATIC.length - 1;
    if (d >= this.#entries.length) throw new HpackError(`index ${index} past the table`);
    return this.#entries[this.#entries.length - 1 - d]!;
  }

  /** 4.4: evicts to make room, then adds (an entry larger than the table empties it). */
  #add(name: Buffer, value: Buffer): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    // The name may be a view of an entry eviction drops: entries are never changed in place,
    // so the view stays valid. Copies, since views of the block and scratch do not last.
    this.#evict(size);
    if (size > this.#maxSize) return;
    this.#entries.push({ name: Buffer.from(name), value: Buffer.from(value), memo: undefined });
    this.#size += size;
  }

  /** Evicts oldest entries until `room` more octets fit under the maximum size. */
  #evict(room: number): void {
    while (this.#entries.length > 0 && this.#size + room > this.#maxSize) {
      const e = this.#entries.shift()!;
      this.#size -= e.name.length + e.value.length + ENTRY_OVERHEAD;
    }
  }
}
