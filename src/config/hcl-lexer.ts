/**
 * Tokenizer for the HCL-like syntax. It never stops at a bad character: it reports it and goes
 * on, so the parser can still find later problems in the same file.
 */
import type { Position } from './ast.js';
import type { Reporter } from './diagnostics.js';

export type TokenKind =
  'ident' | 'string' | 'number' | '{' | '}' | '[' | ']' | '=' | ':' | ',' | 'eof';

export interface Token {
  kind: TokenKind;
  /** Source text for idents, numbers and punctuation; the decoded value for strings. */
  text: string;
  pos: Position;
  /** A line break came between the previous token and this one (entries end at line breaks). */
  newlineBefore: boolean;
}

const PUNCTUATION = new Set(['{', '}', '[', ']', '=', ':', ',']);
const IDENT_START = /[A-Za-z_]/;
const IDENT_PART = /[A-Za-z0-9_.-]/;
const DIGIT = /[0-9]/;
const SIMPLE_ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '"': '"', '\\': '\\' };

export function tokenize(text: string, reporter: Reporter): Token[] {
  return new Lexer(text, reporter).run();
}

class Lexer {
  private i = 0;
  private line = 1;
  private col = 1;
  private newline = false;
  private readonly tokens: Token[] = [];

  constructor(
    private readonly src: string,
    private readonly reporter: Reporter,
  ) {
    if (src.charCodeAt(0) === 0xfeff) this.i = 1;
  }

  run(): Token[] {
    for (;;) {
      this.skipSpaceAndComments();
      const pos = this.pos();
      const c = this.src[this.i];
      if (c === undefined) {
        this.push('eof', '', pos);
        return this.tokens;
      }
      if (PUNCTUATION.has(c)) {
        this.advance();
        this.push(c as TokenKind, c, pos);
      } else if (c === '"') {
        this.push('string', this.readString(pos), pos);
      } else if (c === '<' && this.src[this.i + 1] === '<') {
        // The heredoc's own lines do not count as a break before it.
        const newline = this.newline;
        const value = this.readHeredoc(pos);
        this.newline = newline;
        this.push('string', value, pos);
      } else if (DIGIT.test(c) || (c === '-' && DIGIT.test(this.src[this.i + 1] ?? ''))) {
        this.readNumber(pos);
      } else if (IDENT_START.test(c)) {
        this.push('ident', this.take(IDENT_PART), pos);
      } else {
        this.advance();
        this.reporter.error(pos, '', `unexpected character ${JSON.stringify(c)}`);
      }
    }
  }

  private pos(): Position {
    return { line: this.line, column: this.col, offset: this.i };
  }

  private push(kind: TokenKind, text: string, pos: Position): void {
    this.tokens.push({ kind, text, pos, newlineBefore: this.newline });
    this.newline = false;
  }

  private advance(): string {
    const c = this.src[this.i++]!;
    if (c === '\n') {
      this.line++;
      this.col = 1;
      this.newline = true;
    } else {
      this.col++;
    }
    return c;
  }

  private take(re: RegExp): string {
    const start = this.i;
    while (this.i < this.src.length && re.test(this.src[this.i]!)) this.advance();
    return this.src.slice(start, this.i);
  }

  private startsWith(s: string): boolean {
    return this.src.startsWith(s, this.i);
  }

  private skipSpaceAndComments(): void {
    while (this.i < this.src.length) {
      const c = this.src[this.i]!;
      if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
        this.advance();
      } else if (c === '#' || this.startsWith('//')) {
        while (this.i < this.src.length && this.src[this.i] !== '\n') this.advance();
      } else if (this.startsWith('/*')) {
        const start = this.pos();
        this.advance();
        this.advance();
        while (this.i < this.src.length && !this.startsWith('*/')) this.advance();
        if (this.i >= this.src.length) {
          this.reporter.error(start, '', 'unterminated comment: "/*" is never closed by "*/"');
        } else {
          this.advance();
          this.advance();
        }
      } else {
        return;
      }
    }
  }

  /** A quoted string; it may not span lines, so a missing quote is caught on its own line. */
  private readString(start: Position): string {
    this.advance();
    let out = '';
    for (;;) {
      const c = this.src[this.i];
      if (c === undefined || c === '\n') {
        this.reporter.error(start, '', 'unterminated string: missing closing quote');
        return out;
      }
      if (c === '"') {
        this.advance();
        return out;
      }
      if (c === '\\') {
        out += this.readEscape();
      } else {
        out += this.advance();
      }
    }
  }

  private readEscape(): string {
    const at = this.pos();
    this.advance();
    const e = this.src[this.i];
    if (e !== undefined && e in SIMPLE_ESCAPES) {
      this.advance();
      return SIMPLE_ESCAPES[e]!;
    }
    if (e === 'u' || e === 'U') {
      this.advance();
      const want = e === 'u' ? 4 : 8;
      const hex = this.src.slice(this.i, this.i + want);
      const code = /^[0-9a-fA-F]+$/.test(hex) && hex.length === want ? parseInt(hex, 16) : NaN;
      if (Number.isNaN(code) || code > 0x10ffff) {
        this.reporter.error(at, '', `invalid escape: \\${e} needs ${want} hex digits`);
        return '';
      }
      for (let k = 0; k < want; k++) this.advance();
      return e === 'u' ? String.fromCharCode(code) : String.fromCodePoint(code);
    }
    const shown = e === undefined || e === '\n' ? '\\' : `\\${e}`;
    this.reporter.error(at, '', `invalid escape ${JSON.stringify(shown)} in string`);
    if (e !== undefined && e !== '\n') this.advance();
    return '';
  }

  /** `<<EOF` ... `EOF`; `<<-EOF` also strips the common indentation of the lines. */
  private readHeredoc(start: Position): string {
    this.advance();
    this.advance();
    const strip = this.src[this.i] === '-';
    if (strip) this.advance();
    const marker = this.take(/[A-Za-z0-9_]/);
    if (!marker || !IDENT_START.test(marker)) {
      this.reporter.error(start, '', 'heredoc needs a marker word after "<<", like <<EOF');
      return '';
    }
    this.take(/[ \t\r]/);
    if (this.i < this.src.length && this.src[this.i] !== '\n') {
      this.reporter.error(this.pos(), '', `heredoc marker ${marker} must end its line`);
      while (this.i < this.src.length && this.src[this.i] !== '\n') this.advance();
    }
    const lines: string[] = [];
    while (this.i < this.src.length) {
      this.advance(); // the line break before this line
      const begin = this.i;
      while (this.i < this.src.length && this.src[this.i] !== '\n') this.advance();
      const line = this.src.slice(begin, this.i).replace(/\r$/, '');
      if (line.trim() === marker) return joinHeredoc(lines, strip);
      lines.push(line);
    }
    this.reporter.error(start, '', `unterminated heredoc: no line with just ${marker} closes it`);
    return joinHeredoc(lines, strip);
  }

  private readNumber(pos: Position): void {
    const start = this.i;
    if (this.src[this.i] === '-') this.advance();
    if (this.startsWith('0x') || this.startsWith('0X')) {
      this.advance();
      this.advance();
      this.take(/[0-9a-fA-F]/);
    } else {
      this.take(DIGIT);
      if (this.src[this.i] === '.' && DIGIT.test(this.src[this.i + 1] ?? '')) {
        this.advance();
        this.take(DIGIT);
      }
      if (/[eE]/.test(this.src[this.i] ?? '') && /[-+0-9]/.test(this.src[this.i + 1] ?? '')) {
        this.advance();
        if (/[-+]/.test(this.src[this.i]!)) this.advance();
        this.take(DIGIT);
      }
    }
    // "10s" is a common slip: durations are strings, not numbers with units.
    const tail = this.take(/[A-Za-z0-9_.]/);
    const raw = this.src.slice(start, this.i);
    if (tail || Number.isNaN(Number(raw))) {
      const hint = /^-?\d+(\.\d+)?[a-zµ]+$/.test(raw)
        ? `; quote it if it is a duration: "${raw}"`
        : '';
      this.reporter.error(pos, '', `invalid number ${raw}${hint}`);
    }
    this.push('number', raw, pos);
  }
}

function joinHeredoc(lines: string[], strip: boolean): string {
  if (lines.length === 0) return '';
  if (strip) {
    const indents = lines.filter((l) => l.trim() !== '').map((l) => /^[ \t]*/.exec(l)![0].length);
    const cut = indents.length > 0 ? Math.min(...indents) : 0;
    lines = lines.map((l) => l.slice(cut));
  }
  return lines.join('\n') + '\n';
}
