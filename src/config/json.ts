/**
 * A strict JSON parser that records positions (JSON.parse gives none). It stops at the first
 * syntax error, but duplicate keys are reported without stopping, since later text is still sound.
 */
import type { Entry, ListNode, ObjectNode, Position, ValueNode } from './ast.js';
import { Reporter, sortDiagnostics, type ParseError } from './diagnostics.js';

export interface JsonParseResult {
  /** Undefined when a syntax error prevented reading the whole document. */
  root: ValueNode | undefined;
  errors: ParseError[];
}

export function parseJson(text: string, file: string): JsonParseResult {
  const reporter = new Reporter(file);
  const parser = new JsonParser(text, reporter);
  let root: ValueNode | undefined;
  try {
    root = parser.parseDocument();
  } catch (err) {
    if (!(err instanceof JsonSyntaxError)) throw err;
    root = undefined;
  }
  return { root, errors: sortDiagnostics(reporter.diagnostics) };
}

class JsonSyntaxError extends Error {}

const ESCAPES: Record<string, string> = {
  '"': '"',
  '\\': '\\',
  '/': '/',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
};
const NUMBER_RE = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

class JsonParser {
  private i = 0;
  private line = 1;
  private col = 1;

  constructor(
    private readonly src: string,
    private readonly reporter: Reporter,
  ) {
    if (src.charCodeAt(0) === 0xfeff) this.i = 1;
  }

  parseDocument(): ValueNode {
    this.skipSpace();
    const value = this.parseValue();
    this.skipSpace();
    if (this.i < this.src.length)
      this.fail(`unexpected ${this.describeHere()} after the JSON value`);
    return value;
  }

  private pos(): Position {
    return { line: this.line, column: this.col, offset: this.i };
  }

  private fail(message: string, pos: Position = this.pos()): never {
    this.reporter.error(pos, '', message);
    throw new JsonSyntaxError(message);
  }

  private describeHere(): string {
    const c = this.src[this.i];
    if (c === undefined) return 'end of file';
    if (c === '"') return 'a string';
    const word = /^[A-Za-z0-9_.+-]+/.exec(this.src.slice(this.i, this.i + 20));
    return word ? JSON.stringify(word[0]) : JSON.stringify(c);
  }

  private advance(n = 1): void {
    for (let k = 0; k < n; k++) {
      if (this.src[this.i++] === '\n') {
        this.line++;
        this.col = 1;
      } else {
        this.col++;
      }
    }
  }

  private skipSpace(): void {
    while (/[ \t\r\n]/.test(this.src[this.i] ?? '')) this.advance();
  }

  private parseValue(): ValueNode {
    const pos = this.pos();
    const c = this.src[this.i];
    if (c === '{') return this.parseObject(pos);
    if (c === '[') return this.parseArray(pos);
    if (c === '"') return { kind: 'string', value: this.parseString(), pos };
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) {
      NUMBER_RE.lastIndex = this.i;
      const m = NUMBER_RE.exec(this.src);
      if (!m || /[A-Za-z0-9_.]/.test(this.src[this.i + m[0].length] ?? '')) {
        this.fail(`invalid number ${this.describeHere()}`);
      }
      this.advance(m[0].length);
      return { kind: 'number', value: Number(m[0]), raw: m[0], pos };
    }
    for (const [word, node] of [
      ['true', { kind: 'bool', value: true, pos }],
      ['false', { kind: 'bool', value: false, pos }],
      ['null', { kind: 'null', pos }],
    ] as const) {
      if (
        this.src.startsWith(word, this.i) &&
        !/[A-Za-z0-9_]/.test(this.src[this.i + word.length] ?? '')
      ) {
        this.advance(word.length);
        return node;
      }
    }
    return this.fail(`expected a JSON value, found ${this.describeHere()}`);
  }

  private parseObject(pos: Position): ObjectNode {
    const node: ObjectNode = { kind: 'object', entries: [], pos };
    const seen = new Map<string, Entry>();
    this.advance();
    this.skipSpace();
    if (this.src[this.i] === '}') {
      this.advance();
      return node;
    }
    for (;;) {
      this.skipSpace();
      if (this.src[this.i] === '}') this.fail('trailing comma: JSON does not allow "," before "}"');
      if (this.src[this.i] !== '"')
        this.fail(`expected a string key, found ${this.describeHere()}`);
      const keyPos = this.pos();
      const key = this.parseString();
      this.skipSpace();
      if (this.src[this.i] !== ':')
        this.fail(`expected ":" after key ${JSON.stringify(key)}, found ${this.describeHere()}`);
      this.advance();
      this.skipSpace();
      const entry: Entry = { key, keyPos, labels: [], value: this.parseValue(), block: false };
      const first = seen.get(key);
      if (first) {
        const p = first.keyPos;
        this.reporter.error(
          keyPos,
          '',
          `duplicate key ${JSON.stringify(key)} (first defined at ${p.line}:${p.column})`,
        );
      } else {
        seen.set(key, entry);
        node.entries.push(entry);
      }
      this.skipSpace();
      const c = this.src[this.i];
      if (c !== '}' && c !== ',') {
        this.fail(
          `expected "," or "}" after the value of ${JSON.stringify(key)}, found ${this.describeHere()}`,
        );
      }
      this.advance();
      if (c === '}') return node;
    }
  }

  private parseArray(pos: Position): ListNode {
    const node: ListNode = { kind: 'list', items: [], pos };
    this.advance();
    this.skipSpace();
    if (this.src[this.i] === ']') {
      this.advance();
      return node;
    }
    for (;;) {
      this.skipSpace();
      if (this.src[this.i] === ']') this.fail('trailing comma: JSON does not allow "," before "]"');
      node.items.push(this.parseValue());
      this.skipSpace();
      const c = this.src[this.i];
      if (c === ']' || c === ',') {
        this.advance();
        if (c === ']') return node;
      } else {
        this.fail(`expected "," or "]" in array, found ${this.describeHere()}`);
      }
    }
  }

  private parseString(): string {
    const start = this.pos();
    this.advance();
    let out = '';
    for (;;) {
      const c = this.src[this.i];
      if (c === undefined || c === '\n')
        this.fail('unterminated string: missing closing quote', start);
      if (c === '"') {
        this.advance();
        return out;
      }
      if (c < ' ') this.fail(`control character ${JSON.stringify(c)} must be escaped in a string`);
      if (c !== '\\') {
        out += c;
        this.advance();
        continue;
      }
      const escPos = this.pos();
      const e = this.src[this.i + 1] ?? '';
      if (e in ESCAPES) {
        out += ESCAPES[e];
        this.advance(2);
      } else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(this.src.slice(this.i + 2, this.i + 6))) {
        out += String.fromCharCode(parseInt(this.src.slice(this.i + 2, this.i + 6), 16));
        this.advance(6);
      } else {
        this.fail(`invalid escape ${JSON.stringify('\\' + e)} in string`, escPos);
      }
    }
  }
}
