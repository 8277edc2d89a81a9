/**
 * Consul's `?filter=` expression language (HashiCorp go-bexpr), compiled to a predicate over plain
 * JSON values. Pure: no I/O.
 *
 * Grammar (keywords are lower case; `and` binds tighter than `or`, `not` tighter than both):
 *   Expression := Or
 *   Or         := And ("or" And)*
 *   And        := Not ("and" Not)*
 *   Not        := "not" Not | "(" Or ")" | Match
 *   Match      := Selector ("==" | "!=") Value
 *               | Selector ["not"] ("contains" | "matches") Value
 *               | Selector "is" ["not"] "empty"
 *               | Value ["not"] "in" Selector
 *   Selector   := Ident ("." Ident | "." Digits | "[" String "]")*      e.g. ServiceMeta["my-key"]
 *   Ident      := [A-Za-z][A-Za-z0-9_]*
 *   Value      := String | Number | Selector-shaped bare word (taken as its text: true, v1, a.b)
 *   String     := "..." with Go escapes (\n \t \" \\ \xHH \uHHHH \UHHHHHHHH \ooo ...) | `raw`
 *   Number     := -?(0|[1-9][0-9]*)(\.[0-9]+)?
 *
 * Semantics (as go-bexpr, adapted to untyped JSON):
 *   - Values are text; they are converted to the type of the data they meet. `==` compares
 *     strings as text, numbers numerically (`ServicePort == 8080` and `== "8080"` both match
 *     8080) and booleans after Go's ParseBool (`true`, `T`, `1`, ...).
 *   - `contains` checks list membership (with the same conversion per element), substring on a
 *     string, key presence on a map. `V in S` is `S contains V`.
 *   - `is empty` holds for missing, null, "", [] and {}; numbers and booleans are never empty.
 *   - `matches` tests a string against an RE2-syntax regular expression, run by the linear-time
 *     matcher in core/re2.ts (JavaScript's backtracking RegExp is unsafe on hostile
 *     patterns); non-strings never match. Bad patterns are rejected when the filter compiles.
 *   - Each negated operator (`!=`, `not contains`, `not in`, `is not empty`, `not matches`) is
 *     exactly the negation of its positive form on the value it reaches; a type that the positive
 *     form cannot handle (`==` on a list, say) makes the positive form false.
 * Selectors walk own fields of objects by exact, case-sensitive name. A field that is absent
 * (or a path through a string, number or null) is "missing": every positive operator is false on
 * it except `is empty`. Consul rejects unknown fields of its typed structs at parse time; our data
 * is plain JSON with optional fields, so unknown selectors simply read as missing.
 * When a selector passes through a list before its last segment (`Checks.Status` where Checks is
 * an array) the match is applied to each element and holds if it holds for ANY element, as in
 * go-bexpr; this goes for negated operators too, so `Checks.Status != "passing"` means "some
 * check is not passing" (write `not Checks.Status == "passing"` for "no check is passing"), and
 * an empty list matches nothing. A numeric segment (`Checks.0.Status`) indexes a list instead.
 * Not supported: go-bexpr's JSON-pointer selectors ("/Service/Tags").
 */
import { badRequest, type MeshError } from '../core/errors.js';
import { compileRegex } from '../core/re2.js';

export type FilterPredicate = (item: unknown) => boolean;

/** Longest accepted expression, in UTF-8 bytes. */
export const MAX_FILTER_LENGTH = 4096;
/** Deepest accepted nesting of parentheses and `not`. */
export const MAX_FILTER_DEPTH = 32;
/** Most `matches` clauses in one filter, and their total compiled size, to bound matching cost. */
export const MAX_FILTER_REGEXES = 16;
export const MAX_FILTER_REGEX_SIZE = 4000;

type MatchOp = 'equal' | 'contains' | 'empty' | 'matches';

interface Match {
  kind: 'match';
  path: string[];
  op: MatchOp;
  negate: boolean;
  /** The value as written (after unquoting); '' for `is empty`. */
  raw: string;
  regex: ((subject: string) => boolean) | undefined;
}

type Node = { kind: 'and' | 'or'; items: Node[] } | { kind: 'not'; operand: Node } | Match;

/**
 * Compiles a filter expression. Throws a 400 MeshError (field 'filter') naming the 1-based
 * character position of a syntax error. The empty string compiles to "match everything", as
 * Consul ignores an empty `?filter=`; whitespace alone is a syntax error, as in Consul.
 */
export function compileFilter(expr: string): FilterPredicate {
  // The cheap UTF-16 length first, so a huge input is never encoded.
  if (expr.length > MAX_FILTER_LENGTH || utf8Length(expr) > MAX_FILTER_LENGTH) {
    throw filterError(`filter expression is longer than the limit of ${MAX_FILTER_LENGTH} bytes`);
  }
  if (expr === '') return () => true;
  const ast = new Parser(expr).parse();
  return toPredicate(ast);
}

function utf8Length(s: string): number {
  return new TextEncoder().encode(s).length;
}

// ---------------------------------------------------------------------------------------------
// Parsing: a hand-written recursive descent over characters, since go-bexpr's grammar is
// whitespace-sensitive (`Service.Tags` has no spaces; `1and` is not a number followed by `and`).

const isLetter = (c: string | undefined): boolean => c !== undefined && /[A-Za-z]/.test(c);
const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
const isIdentChar = (c: string | undefined): boolean => c !== undefined && /[A-Za-z0-9_]/.test(c);
const isSpace = (c: string | undefined): boolean =>
  c === ' ' || c === '\t' || c === '\r' || c === '\n';

const OPERATORS =
  '==, !=, contains, not contains, in, not in, is empty, is not empty, matches, not matches';

type Operand =
  | { type: 'selector'; path: string[]; text: string; start: number }
  | { type: 'value'; raw: string; start: number };

class Parser {
  private pos = 0;
  private depth = 0;
  private regexCount = 0;
  private regexSize = 0;

  constructor(private readonly src: string) {}

  parse(): Node {
    const node = this.parseOr();
    this.skipSpace();
    if (this.pos < this.src.length) {
      this.fail(`expected 'and', 'or' or the end of the expression, found ${this.found()}`);
    }
    return node;
  }

  private fail(message: string, at: number = this.pos): never {
    throw filterError(`invalid filter expression at position ${at + 1}: ${message}`);
  }

  /** A short quote of the text at `at`, for error messages. */
  private found(at: number = this.pos): string {
    if (at >= this.src.length) return 'the end of the expression';
    const rest = this.src.slice(at);
    return JSON.stringify(rest.length > 20 ? `${rest.slice(0, 20)}...` : rest);
  }

  private skipSpace(): void {
    while (isSpace(this.src[this.pos])) this.pos += 1;
  }

  /** Is `word` at the cursor as a whole word? */
  private atWord(word: string, at: number = this.pos): boolean {
    return this.src.startsWith(word, at) && !isIdentChar(this.src[at + word.length]);
  }

  /** Consumes optional space, then `word` as a whole word; restores the cursor if absent. */
  private eatWord(word: string): boolean {
    const save = this.pos;
    this.skipSpace();
    if (this.atWord(word)) {
      this.pos += word.length;
      return true;
    }
    this.pos = save;
    return false;
  }

  private enter(at: number): void {
    this.depth += 1;
    if (this.depth > MAX_FILTER_DEPTH) {
      this.fail(`expression nests deeper than ${MAX_FILTER_DEPTH} levels`, at);
    }
  }

  private parseOr(): Node {
    const items = [this.parseAnd()];
    while (this.eatWord('or')) items.push(this.parseAnd());
    return items.length === 1 ? items[0] : { kind: 'or', items };
  }

  private parseAnd(): Node {
    const items = [this.parseNot()];
    while (this.eatWord('and')) items.push(this.parseNot());
    return items.length === 1 ? items[0] : { kind: 'and', items };
  }

  private parseNot(): Node {
    this.skipSpace();
    const start = this.pos;
    const next = this.src[start + 3];
    if (this.atWord('not') && (isSpace(next) || next === '(')) {
      this.enter(start);
      this.pos += 3;
      const operand = this.parseNot();
      this.depth -= 1;
      return { kind: 'not', operand };
    }
    if (this.src[start] === '(') {
      this.enter(start);
      this.pos += 1;
      const inner = this.parseOr();
      this.skipSpace();
      if (this.src[this.pos] !== ')') {
        this.fail(`expected ')' to close the '(' at position ${start + 1}, found ${this.found()}`);
      }
      this.pos += 1;
      this.depth -= 1;
      return inner;
    }
    return this.parseMatch();
  }

  private parseMatch(): Match {
    const left = this.parseOperand('a selector or value');
    this.skipSpace();
    const opStart = this.pos;
    const { op, negate, text } = this.parseOperator();

    if (op === 'in') {
      this.skipSpace();
      if (!isLetter(this.src[this.pos])) {
        this.fail(`expected a selector after '${text}', found ${this.found()}`);
      }
      const right = this.parseSelector();
      const raw = left.type === 'value' ? left.raw : left.text;
      return { kind: 'match', path: right.path, op: 'contains', negate, raw, regex: undefined };
    }
    if (left.type !== 'selector') {
      this.fail(
        `a quoted or numeric value must be followed by 'in' or 'not in'; ` +
          `put the selector on the left of '${text}'`,
        opStart,
      );
    }
    if (op === 'empty') {
      return { kind: 'match', path: left.path, op, negate, raw: '', regex: undefined };
    }

    this.skipSpace();
    const valueStart = this.pos;
    const value = this.parseOperand(`a value after '${text}'`);
    const after = this.src[this.pos];
    if (value.type === 'selector' && !(after === undefined || isSpace(after) || after === ')')) {
      this.fail(
        `unexpected ${this.found()} after the bare value ${JSON.stringify(value.text)}; ` +
          'quote values that contain punctuation, e.g. "web-1"',
      );
    }
    const raw = value.type === 'value' ? value.raw : value.text;
    let regex: ((subject: string) => boolean) | undefined;
    if (op === 'matches') {
      const compiled = compileRegex(raw);
      if (!compiled.ok) {
        this.fail(
          `regular expression ${JSON.stringify(raw)} rejected: ${compiled.reason}`,
          valueStart,
        );
      }
      this.regexCount += 1;
      this.regexSize += compiled.size;
      if (this.regexCount > MAX_FILTER_REGEXES) {
        this.fail(`more than ${MAX_FILTER_REGEXES} 'matches' clauses in one filter`, opStart);
      }
      if (this.regexSize > MAX_FILTER_REGEX_SIZE) {
        this.fail(
          `the regular expressions of this filter are too large in total ` +
            `(limit ${MAX_FILTER_REGEX_SIZE} instructions)`,
          valueStart,
        );
      }
      regex = compiled.test;
    }
    return { kind: 'match', path: left.path, op, negate, raw, regex };
  }

  private parseOperator(): { op: MatchOp | 'in'; negate: boolean; text: string } {
    const src = this.src;
    const start = this.pos;
    if (src.startsWith('==', start) || src.startsWith('!=', start)) {
      this.pos += 2;
      return { op: 'equal', negate: src[start] === '!', text: src.slice(start, start + 2) };
    }
    if (this.eatWord('is')) {
      const negate = this.eatWord('not');
      if (!this.eatWord('empty')) {
        this.skipSpace();
        this.fail(`expected 'empty' after '${negate ? 'is not' : 'is'}', found ${this.found()}`);
      }
      return { op: 'empty', negate, text: negate ? 'is not empty' : 'is empty' };
    }
    const negate = this.eatWord('not');
    for (const [word, op] of [
      ['contains', 'contains'],
      ['in', 'in'],
      ['matches', 'matches'],
    ] as const) {
      if (this.eatWord(word)) return { op, negate, text: negate ? `not ${word}` : word };
    }
    this.skipSpace();
    if (negate) {
      this.fail(`expected 'contains', 'in' or 'matches' after 'not', found ${this.found()}`);
    }
    this.fail(`expected an operator (${OPERATORS}), found ${this.found()}`, start);
  }

  private parseOperand(what: string): Operand {
    const start = this.pos;
    const c = this.src[start];
    if (c === '"' || c === '`') {
      return { type: 'value', raw: this.parseString(), start };
    }
    if (c === '-' || isDigit(c)) {
      return { type: 'value', raw: this.parseNumber(), start };
    }
    if (isLetter(c)) {
      return { type: 'selector', ...this.parseSelector(), start };
    }
    this.fail(`expected ${what}, found ${this.found()}`);
  }

  private parseSelector(): { path: string[]; text: string } {
    const start = this.pos;
    const path = [this.parseIdent()];
    for (;;) {
      const c = this.src[this.pos];
      if (c === '.') {
        this.pos += 1;
        const next = this.src[this.pos];
        if (isLetter(next)) path.push(this.parseIdent());
        else if (isDigit(next)) path.push(this.takeWhile(isDigit));
        else this.fail(`expected a field name after '.', found ${this.found()}`);
      } else if (c === '[') {
        const open = this.pos;
        this.pos += 1;
        this.skipSpace();
        const q = this.src[this.pos];
        if (q !== '"' && q !== '`') {
          this.fail(`expected a quoted key inside '[...]', found ${this.found()}`);
        }
        path.push(this.parseString());
        this.skipSpace();
        if (this.src[this.pos] !== ']') {
          this.fail(`expected ']' to close the '[' at position ${open + 1}, found ${this.found()}`);
        }
        this.pos += 1;
      } else {
        return { path, text: this.src.slice(start, this.pos) };
      }
    }
  }

  private parseIdent(): string {
    return this.takeWhile(isIdentChar);
  }

  private takeWhile(pred: (c: string | undefined) => boolean): string {
    const start = this.pos;
    while (this.pos < this.src.length && pred(this.src[this.pos])) this.pos += 1;
    return this.src.slice(start, this.pos);
  }

  private parseNumber(): string {
    const start = this.pos;
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?/.exec(this.src.slice(start, start + 400));
    const end = start + (m ? m[0].length : 0);
    const after = this.src[end];
    if (!m || !(after === undefined || isSpace(after) || after === ')')) {
      this.fail(`invalid number literal ${this.found(start)}; quote values that are not numbers`);
    }
    this.pos = end;
    return m[0];
  }

  /** Parses a "..." or `...` literal at the cursor and returns its text. */
  private parseString(): string {
    const src = this.src;
    const start = this.pos;
    const quote = src[start];
    const close = (): never => this.fail('unterminated string literal', start);
    if (quote === '`') {
      const end = src.indexOf('`', start + 1);
      if (end === -1) close();
      this.pos = end + 1;
      return src.slice(start + 1, end);
    }
    let out = '';
    let i = start + 1;
    for (;;) {
      const c = src[i];
      if (c === undefined) close();
      if (c === '"') break;
      if (c !== '\\') {
        out += c;
        i += 1;
        continue;
      }
      const { text, length } = this.parseEscape(i);
      out += text;
      i += length;
    }
    this.pos = i + 1;
    return out;
  }

  /** Decodes the Go string escape at src[at] (a backslash). */
  private parseEscape(at: number): { text: string; length: number } {
    const e = this.src[at + 1];
    const simple: Record<string, string> = {
      a: '\x07',
      b: '\b',
      f: '\f',
      n: '\n',
      r: '\r',
      t: '\t',
      v: '\v',
      '\\': '\\',
      '"': '"',
    };
    if (e !== undefined && Object.hasOwn(simple, e)) return { text: simple[e], length: 2 };
    const hex = (digits: number): { text: string; length: number } => {
      const h = this.src.slice(at + 2, at + 2 + digits);
      if (!new RegExp(`^[0-9A-Fa-f]{${digits}}$`).test(h)) {
        this.fail(`invalid \\${e} escape: expected ${digits} hex digits`, at);
      }
      return { text: this.codePoint(parseInt(h, 16), at, e === 'x'), length: 2 + digits };
    };
    if (e === 'x') return hex(2);
    if (e === 'u') return hex(4);
    if (e === 'U') return hex(8);
    if (e !== undefined && e >= '0' && e <= '7') {
      const o = this.src.slice(at + 1, at + 4);
      if (!/^[0-7]{3}$/.test(o)) this.fail('invalid octal escape: expected 3 octal digits', at);
      return { text: this.codePoint(parseInt(o, 8), at, true), length: 4 };
    }
    if (e === undefined) this.fail('unterminated string literal', at);
    this.fail(`unknown escape sequence \\${e} in string`, at);
  }

  private codePoint(cp: number, at: number, byte: boolean): string {
    // Go's \x and octal escapes write raw bytes; only ASCII ones mean the same character here.
    if (byte && cp > 0x7f) this.fail('byte escapes above \\x7f are not supported; use \\u', at);
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      this.fail('escape sequence is not a valid Unicode code point', at);
    }
    return String.fromCodePoint(cp);
  }
}

function filterError(message: string): MeshError {
  return badRequest(message, 'filter');
}

// ---------------------------------------------------------------------------------------------
// Evaluation

function toPredicate(node: Node): FilterPredicate {
  switch (node.kind) {
    case 'and': {
      const items = node.items.map(toPredicate);
      return (item) => items.every((p) => p(item));
    }
    case 'or': {
      const items = node.items.map(toPredicate);
      return (item) => items.some((p) => p(item));
    }
    case 'not': {
      const operand = toPredicate(node.operand);
      return (item) => !operand(item);
    }
    case 'match':
      return matchPredicate(node);
  }
}

const isMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

// strconv.ParseBool's spellings.
const TRUE_WORDS = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE_WORDS = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

function matchPredicate(m: Match): FilterPredicate {
  const { raw, path } = m;
  // Convert the value once for each type of data it may meet.
  const asNumber = DECIMAL.test(raw) ? Number(raw) : undefined;
  const asBool = TRUE_WORDS.has(raw) ? true : FALSE_WORDS.has(raw) ? false : undefined;

  const equals = (v: unknown): boolean => {
    if (typeof v === 'string') return v === raw;
    if (typeof v === 'number') return asNumber !== undefined && v === asNumber;
    if (typeof v === 'boolean') return asBool === v;
    return false;
  };

  let test: (v: unknown) => boolean;
  switch (m.op) {
    case 'equal':
      test = equals;
      break;
    case 'contains':
      test = (v) => {
        if (Array.isArray(v)) return v.some(equals);
        if (typeof v === 'string') return v.includes(raw);
        if (isMap(v)) return Object.hasOwn(v, raw);
        return false;
      };
      break;
    case 'empty':
      test = (v) => {
        if (v === undefined || v === null) return true;
        if (typeof v === 'string' || Array.isArray(v)) return v.length === 0;
        if (isMap(v)) return Object.keys(v).length === 0;
        return false;
      };
      break;
    case 'matches': {
      const regex = m.regex as (subject: string) => boolean;
      test = (v) => typeof v === 'string' && regex(v);
      break;
    }
  }
  const leaf = m.negate ? (v: unknown) => !test(v) : test;

  const walk = (v: unknown, depth: number): boolean => {
    if (depth === path.length) return leaf(v);
    const seg = path[depth];
    if (Array.isArray(v)) {
      if (isDigit(seg[0])) return walk(v[Number(seg)], depth + 1);
      // Any element: go-bexpr applies the whole match to each element of a list it passes.
      return v.some((el) => walk(el, depth));
    }
    if (isMap(v) && Object.hasOwn(v, seg)) return walk(v[seg], depth + 1);
    return leaf(undefined);
  };
  return (item) => walk(item, 0);
}
