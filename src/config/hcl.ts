/**
 * Parser for the HCL-like syntax of Consul service definitions and ACL rules: blocks with
 * optional labels, `k = v` / `k: v` attributes, lists, objects, heredocs and comments. No
 * interpolation: `${` is plain text. After a syntax error it skips to the next line that starts
 * a key and goes on, so one run reports the independent problems of a file.
 */
import type { Entry, Label, ListNode, ObjectNode, Position, ValueNode } from './ast.js';
import { Reporter, sortDiagnostics, type ParseError } from './diagnostics.js';
import { tokenize, type Token } from './hcl-lexer.js';

export interface HclParseResult {
  /** The file body; partial when there are errors. */
  root: ObjectNode;
  errors: ParseError[];
}

export function parseHcl(text: string, file: string): HclParseResult {
  const reporter = new Reporter(file);
  const parser = new Parser(tokenize(text, reporter), reporter);
  const root = parser.parseFile();
  return { root, errors: sortDiagnostics(reporter.diagnostics) };
}

/** Unwinds to the innermost body, which skips ahead and resumes. */
class SyntaxFailure extends Error {}

function describeToken(t: Token): string {
  switch (t.kind) {
    case 'eof':
      return 'end of file';
    case 'string':
      return `string ${JSON.stringify(t.text)}`;
    case 'number':
      return `number ${t.text}`;
    case 'ident':
      return `word ${t.text}`;
    default:
      return `"${t.kind}"`;
  }
}

function at(p: Position): string {
  return `${p.line}:${p.column}`;
}

class Parser {
  private i = 0;
  private lastRecovery = -1;

  constructor(
    private readonly tokens: Token[],
    private readonly reporter: Reporter,
  ) {}

  parseFile(): ObjectNode {
    return this.parseBody(undefined, 'file', { line: 1, column: 1, offset: 0 });
  }

  private peek(): Token {
    return this.tokens[this.i]!;
  }

  private next(): Token {
    const t = this.tokens[this.i]!;
    if (t.kind !== 'eof') this.i++;
    return t;
  }

  /** Records an error (unless its line already has one: that is usually a knock-on) and unwinds. */
  private fail(pos: Position, message: string): never {
    this.report(pos, message);
    throw new SyntaxFailure(message);
  }

  private report(pos: Position, message: string): void {
    if (!this.reporter.diagnostics.some((d) => d.line === pos.line)) {
      this.reporter.error(pos, '', message);
    }
  }

  /** Entries up to the closing `}` of `open`, or to end of file for the file body. */
  private parseBody(open: Token | undefined, what: string, pos: Position): ObjectNode {
    const node: ObjectNode = { kind: 'object', entries: [], pos };
    for (;;) {
      const t = this.peek();
      if (t.kind === ',') {
        this.next();
      } else if (t.kind === 'eof') {
        // After another error this is most likely its knock-on (a quote that ate a brace).
        if (open && this.reporter.diagnostics.length === 0) {
          this.report(
            t.pos,
            `expected "}" to close the ${what} opened at ${at(open.pos)}, found end of file`,
          );
        }
        return node;
      } else if (t.kind === '}' && open) {
        this.next();
        return node;
      } else {
        try {
          node.entries.push(this.parseEntry());
          this.expectEntryEnd(open !== undefined);
        } catch (err) {
          if (!(err instanceof SyntaxFailure)) throw err;
          this.recover(open !== undefined);
        }
      }
    }
  }

  private parseEntry(): Entry {
    const keyTok = this.peek();
    if (keyTok.kind === '}')
      this.fail(keyTok.pos, 'unexpected "}": there is no open block to close');
    if (keyTok.kind !== 'ident' && keyTok.kind !== 'string') {
      this.fail(keyTok.pos, `expected a key, found ${describeToken(keyTok)}`);
    }
    this.next();
    const key = keyTok.text;
    const sep = this.peek();
    if (sep.kind === '=' || sep.kind === ':') {
      this.next();
      const start = this.peek();
      if (start.newlineBefore || start.kind === 'eof') {
        this.fail(sep.pos, `expected a value after "${sep.kind}" for key ${JSON.stringify(key)}`);
      }
      return { key, keyPos: keyTok.pos, labels: [], value: this.parseValue(), block: false };
    }
    // Block: labels and the opening brace must sit on the key's line.
    const labelTokens: Token[] = [];
    while (
      !this.peek().newlineBefore &&
      (this.peek().kind === 'string' || this.peek().kind === 'ident')
    ) {
      labelTokens.push(this.next());
    }
    const labels: Label[] = labelTokens.map((l) => ({ value: l.text, pos: l.pos }));
    const brace = this.peek();
    if (brace.kind === '{' && !brace.newlineBefore) {
      this.next();
      const body = this.parseBody(brace, 'block', brace.pos);
      return { key, keyPos: keyTok.pos, labels, value: body, block: true };
    }
    const want = `expected "=" or "{" after key ${JSON.stringify(key)}`;
    const first = labelTokens[0];
    if (first) this.fail(first.pos, `${want}, found ${describeToken(first)}`);
    if (brace.newlineBefore) this.fail(keyTok.pos, `${want} on the same line`);
    this.fail(brace.pos, `${want}, found ${describeToken(brace)}`);
  }

  /**
   * An entry ends at a line break, a comma, the closing brace or the end of the file, or (as in
   * HCL 1, which Consul's files and ACL rules use) where the next key starts on the same line:
   * `service "web" { policy = "write" intentions = "write" }`.
   */
  private expectEntryEnd(inBlock: boolean): void {
    const t = this.peek();
    if (t.newlineBefore || t.kind === ',' || t.kind === 'eof' || (inBlock && t.kind === '}'))
      return;
    if (inBlock && t.kind === 'ident') return;
    this.fail(t.pos, `expected a line break or "," before ${describeToken(t)}`);
  }

  private parseValue(): ValueNode {
    const t = this.peek();
    switch (t.kind) {
      case 'string':
        this.next();
        return { kind: 'string', value: t.text, pos: t.pos };
      case 'number':
        this.next();
        return { kind: 'number', value: Number(t.text), raw: t.text, pos: t.pos };
      case '[':
        this.next();
        return this.parseList(t);
      case '{':
        this.next();
        return this.parseBody(t, 'object', t.pos);
      case 'ident':
        if (t.text === 'true' || t.text === 'false') {
          this.next();
          return { kind: 'bool', value: t.text === 'true', pos: t.pos };
        }
        if (t.text === 'null') {
          this.next();
          return { kind: 'null', pos: t.pos };
        }
        return this.fail(t.pos, `unquoted word ${t.text}: strings must be in double quotes`);
      default:
        return this.fail(t.pos, `expected a value, found ${describeToken(t)}`);
    }
  }

  private parseList(open: Token): ListNode {
    const node: ListNode = { kind: 'list', items: [], pos: open.pos };
    for (;;) {
      const t = this.peek();
      if (t.kind === ']') {
        this.next();
        return node;
      }
      if (t.kind === 'eof') {
        this.fail(
          t.pos,
          `expected "]" to close the list opened at ${at(open.pos)}, found end of file`,
        );
      }
      node.items.push(this.parseValue());
      const sep = this.peek();
      if (sep.kind === ',') this.next();
      else if (sep.kind !== ']')
        this.fail(sep.pos, `expected "," or "]" in list, found ${describeToken(sep)}`);
    }
  }

  /**
   * Skips to where parsing can resume: a key at the start of a line at this nesting depth, or the
   * closing brace of the enclosing block.
   */
  private recover(inBlock: boolean): void {
    let depth = 0;
    for (;;) {
      const t = this.peek();
      if (t.kind === 'eof') return;
      if (depth === 0) {
        const startsEntry = t.newlineBefore && (t.kind === 'ident' || t.kind === 'string');
        if ((startsEntry || (inBlock && t.kind === '}')) && this.i !== this.lastRecovery) {
          this.lastRecovery = this.i;
          return;
        }
      }
      if (t.kind === '{' || t.kind === '[') depth++;
      else if ((t.kind === '}' || t.kind === ']') && depth > 0) depth--;
      this.next();
    }
  }
}
