/**
 * The regular expressions of `matches` / `not matches` filters: RE2 syntax (what Consul, in Go,
 * accepts) run by a Thompson-NFA simulation, memoised as a lazy DFA, so matching time is linear in
 * the subject for any pattern.
 *
 * Why not JavaScript's RegExp: V8 backtracks, and rejecting backreferences and lookaround is not
 * enough. Nested repeats such as `(a+)+$` are exponential, and even a pattern like `.*.*.*x` takes
 * seconds on a 256-character string, so a caller of `?filter=` could stall the event loop. RE2
 * has neither backreferences nor lookaround, which is what makes a linear-time matcher possible,
 * and Consul users' patterns never rely on them.
 *
 * Supported: literals and escapes (\n \t \x41 \x{263a} \101 \Q...\E and escaped punctuation), `.`,
 * classes (`[a-z]`, `[^...]`, `\d \w \s` and their negations, `[[:alpha:]]`, `\pL`, `\p{Greek}`),
 * anchors `^ $ \A \z \b \B`, groups `(...)`, `(?:...)`, `(?P<name>...)`, `(?<name>...)`, flags
 * `(?i)`, `(?m)`, `(?s)`, `(?U)` (also scoped, `(?i:...)`), alternation and the repeats
 * `* + ? {n} {n,} {n,m}` with lazy forms. Rejected: backreferences, lookaround, `\C`.
 * Limits: the pattern is at most 256 characters, repeat counts at most 1000 (as in RE2), and the
 * compiled program at most MAX_PROGRAM_SIZE instructions so matching cost stays bounded.
 */

export const MAX_PATTERN_LENGTH = 256;
const MAX_REPEAT_COUNT = 1000;
export const MAX_PROGRAM_SIZE = 2000;

export type RegexResult =
  { ok: true; size: number; test: (subject: string) => boolean } | { ok: false; reason: string };

export function compileRegex(pattern: string): RegexResult {
  if (pattern.length > MAX_PATTERN_LENGTH) {
    return {
      ok: false,
      reason: `regular expression is ${pattern.length} characters long (limit ${MAX_PATTERN_LENGTH})`,
    };
  }
  try {
    const ast = new RegexParser(pattern).parse();
    const prog = compile(ast);
    const matcher = new Matcher(assemble(prog));
    return { ok: true, size: prog.length, test: (subject) => matcher.test(subject) };
  } catch (err) {
    if (err instanceof Rejected) return { ok: false, reason: err.message };
    throw err;
  }
}

class Rejected extends Error {}

// ---------------------------------------------------------------------------------------------
// Syntax tree

type CharTest = (cp: number) => boolean;
type AssertKind = 'bol' | 'eol' | 'bot' | 'eot' | 'word' | 'nonword';

type RNode =
  | { t: 'char'; test: CharTest }
  | { t: 'empty' }
  | { t: 'assert'; kind: AssertKind }
  | { t: 'cat'; items: RNode[] }
  | { t: 'alt'; items: RNode[] }
  | { t: 'repeat'; node: RNode; min: number; max: number };

interface Flags {
  i: boolean;
  m: boolean;
  s: boolean;
}

const NEWLINE = 0x0a;
const cpOf = (s: string): number => s.codePointAt(0) as number;

function isWordChar(cp: number): boolean {
  return (
    (cp >= 0x30 && cp <= 0x39) ||
    (cp >= 0x41 && cp <= 0x5a) ||
    (cp >= 0x61 && cp <= 0x7a) ||
    cp === 0x5f
  );
}

type Range = [number, number];

// RE2's Perl classes are ASCII-only.
const PERL_CLASSES: Record<string, Range[]> = {
  d: [[0x30, 0x39]],
  s: [
    [0x09, 0x0a],
    [0x0c, 0x0d],
    [0x20, 0x20],
  ],
  w: [
    [0x30, 0x39],
    [0x41, 0x5a],
    [0x5f, 0x5f],
    [0x61, 0x7a],
  ],
};

const POSIX_CLASSES: Record<string, Range[]> = {
  alnum: [
    [0x30, 0x39],
    [0x41, 0x5a],
    [0x61, 0x7a],
  ],
  alpha: [
    [0x41, 0x5a],
    [0x61, 0x7a],
  ],
  ascii: [[0x00, 0x7f]],
  blank: [
    [0x09, 0x09],
    [0x20, 0x20],
  ],
  cntrl: [
    [0x00, 0x1f],
    [0x7f, 0x7f],
  ],
  digit: [[0x30, 0x39]],
  graph: [[0x21, 0x7e]],
  lower: [[0x61, 0x7a]],
  print: [[0x20, 0x7e]],
  punct: [
    [0x21, 0x2f],
    [0x3a, 0x40],
    [0x5b, 0x60],
    [0x7b, 0x7e],
  ],
  space: [
    [0x09, 0x0d],
    [0x20, 0x20],
  ],
  upper: [[0x41, 0x5a]],
  word: PERL_CLASSES.w,
  xdigit: [
    [0x30, 0x39],
    [0x41, 0x46],
    [0x61, 0x66],
  ],
};

const inRanges = (ranges: Range[], cp: number): boolean =>
  ranges.some(([lo, hi]) => cp >= lo && cp <= hi);

/** Simple case variants of a code point (enough for RE2's (?i) on common text). */
function caseVariants(cp: number): number[] {
  const s = String.fromCodePoint(cp);
  const out = [cp];
  for (const v of [s.toLowerCase(), s.toUpperCase()]) {
    const c = cpOf(v);
    if ([...v].length === 1 && !out.includes(c)) out.push(c);
  }
  return out;
}

function foldTest(test: CharTest, fold: boolean): CharTest {
  return fold ? (cp) => caseVariants(cp).some(test) : test;
}

// Unicode classes are tested with single-character JavaScript property escapes: anchored and of
// length one, they cannot backtrack.
const unicodeClassCache = new Map<string, RegExp>();

function unicodeClass(name: string): RegExp | null {
  const cached = unicodeClassCache.get(name);
  if (cached !== undefined) return cached;
  if (!/^[A-Za-z_]+$/.test(name)) return null;
  for (const spelling of [name, `Script=${name}`]) {
    try {
      const re = new RegExp(`^\\p{${spelling}}$`, 'u');
      // Only real property names are cached, so the cache stays small whatever callers send.
      unicodeClassCache.set(name, re);
      return re;
    } catch {
      // Not a property under this spelling; try the next.
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Parser (RE2 syntax)

class RegexParser {
  private i = 0;
  private flags: Flags = { i: false, m: false, s: false };

  constructor(private readonly p: string) {}

  private fail(message: string, at: number = this.i): never {
    throw new Rejected(`${message} at pattern character ${at + 1}`);
  }

  parse(): RNode {
    const node = this.parseAlt();
    if (this.i < this.p.length) this.fail("unexpected ')'");
    return node;
  }

  private parseAlt(): RNode {
    const items = [this.parseConcat()];
    while (this.p[this.i] === '|') {
      this.i += 1;
      items.push(this.parseConcat());
    }
    return items.length === 1 ? items[0] : { t: 'alt', items };
  }

  private parseConcat(): RNode {
    const items: RNode[] = [];
    while (this.i < this.p.length && this.p[this.i] !== '|' && this.p[this.i] !== ')') {
      const atom = this.parseAtom();
      if (atom === null) continue; // a flag group such as (?i): changes flags, matches nothing
      items.push(this.parseRepeats(atom));
    }
    return items.length === 1
      ? items[0]
      : items.length === 0
        ? { t: 'empty' }
        : { t: 'cat', items };
  }

  private parseRepeats(atom: RNode): RNode {
    const q = this.parseQuantifier();
    if (q === null) return atom;
    if (this.p[this.i] === '?') this.i += 1; // lazy: same language, and we only ask "is there a match"
    if (this.parseQuantifier(true) !== null) this.fail('invalid nested repetition operator');
    return { t: 'repeat', node: atom, min: q.min, max: q.max };
  }

  private parseQuantifier(peekOnly = false): { min: number; max: number } | null {
    const c = this.p[this.i];
    let q: { min: number; max: number; len: number } | null = null;
    if (c === '*') q = { min: 0, max: Infinity, len: 1 };
    else if (c === '+') q = { min: 1, max: Infinity, len: 1 };
    else if (c === '?') q = { min: 0, max: 1, len: 1 };
    else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.p.slice(this.i, this.i + 16));
      if (m) {
        const min = Number(m[1]);
        const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
        q = { min, max, len: m[0].length };
      }
    }
    if (q === null || peekOnly) return q;
    if (q.min > MAX_REPEAT_COUNT || (q.max !== Infinity && q.max > MAX_REPEAT_COUNT)) {
      this.fail(`repeat count above ${MAX_REPEAT_COUNT}`);
    }
    if (q.max < q.min) this.fail('invalid repeat count');
    this.i += q.len;
    return q;
  }

  /** Parses one atom; null for a bare flag group. */
  private parseAtom(): RNode | null {
    const p = this.p;
    const c = p[this.i];
    const start = this.i;
    switch (c) {
      case '(':
        return this.parseGroup();
      case '[':
        return this.parseClass();
      case '.': {
        this.i += 1;
        const dotAll = this.flags.s;
        return { t: 'char', test: (cp) => dotAll || cp !== NEWLINE };
      }
      case '^':
        this.i += 1;
        return { t: 'assert', kind: this.flags.m ? 'bol' : 'bot' };
      case '$':
        this.i += 1;
        return { t: 'assert', kind: this.flags.m ? 'eol' : 'eot' };
      case '*':
      case '+':
      case '?':
        this.fail('missing argument to repetition operator');
        break;
      case '\\':
        return this.parseEscapeAtom();
      default: {
        if (c === '{' && this.parseQuantifier(true) !== null) {
          this.fail('missing argument to repetition operator');
        }
        const cp = cpOf(p.slice(start));
        this.i += cp > 0xffff ? 2 : 1;
        return this.literal(cp);
      }
    }
  }

  private literal(cp: number): RNode {
    if (!this.flags.i) return { t: 'char', test: (x) => x === cp };
    const variants = caseVariants(cp);
    // Subject-side variants too, so e.g. the Kelvin sign matches (?i)k as in RE2.
    return {
      t: 'char',
      test: (x) =>
        variants.includes(x) || (x > 0x7f && caseVariants(x).some((v) => variants.includes(v))),
    };
  }

  private parseGroup(): RNode | null {
    const p = this.p;
    const open = this.i;
    this.i += 1;
    if (p[this.i] === '?') {
      const rest = p.slice(this.i + 1);
      const named = /^P?<([A-Za-z_][A-Za-z0-9_]*)>/.exec(rest);
      if (named) {
        this.i += 1 + named[0].length;
      } else if (/^(=|!|<=|<!)/.test(rest)) {
        this.fail('lookaround assertions are not supported', open);
      } else {
        const m = /^([imsU]*)(-([imsU]*))?([:)])/.exec(rest);
        const emptyFlags = m !== null && m[1] === '' && m[2] === undefined && m[4] === ')';
        if (!m || emptyFlags || (m[2] !== undefined && m[3] === '')) {
          this.fail('invalid group syntax', open);
        }
        const next: Flags = { ...this.flags };
        for (const f of m[1]) if (f !== 'U') next[f as keyof Flags] = true;
        for (const f of m[3] ?? '') if (f !== 'U') next[f as keyof Flags] = false;
        this.i += 1 + m[0].length;
        if (m[4] === ')') {
          // (?flags) applies to the rest of the enclosing group.
          this.flags = next;
          return null;
        }
        return this.groupBody(open, next);
      }
    }
    return this.groupBody(open, { ...this.flags });
  }

  private groupBody(open: number, inner: Flags): RNode {
    const outer = this.flags;
    this.flags = inner;
    const node = this.parseAlt();
    this.flags = outer;
    if (this.p[this.i] !== ')') this.fail("missing closing ')'", open);
    this.i += 1;
    // Keep the group a distinct node so `()` can be repeated.
    return node.t === 'empty' ? { t: 'cat', items: [] } : node;
  }

  private parseEscapeAtom(): RNode {
    const p = this.p;
    const at = this.i;
    const e = p[at + 1];
    switch (e) {
      case 'A':
        this.i += 2;
        return { t: 'assert', kind: 'bot' };
      case 'z':
        this.i += 2;
        return { t: 'assert', kind: 'eot' };
      case 'b':
        this.i += 2;
        return { t: 'assert', kind: 'word' };
      case 'B':
        this.i += 2;
        return { t: 'assert', kind: 'nonword' };
      case 'Q': {
        const end = p.indexOf('\\E', at + 2);
        const text = p.slice(at + 2, end === -1 ? p.length : end);
        this.i = end === -1 ? p.length : end + 2;
        const items = [...text].map((ch) => this.literal(cpOf(ch)));
        return items.length === 1 ? items[0] : { t: 'cat', items };
      }
      default: {
        const cls = this.parseClassEscape();
        if (cls) return { t: 'char', test: foldTest(cls, this.flags.i) };
        return this.literal(this.parseCharEscape());
      }
    }
  }

  /** \d \D \s \S \w \W \pX \p{Name} \PX at the cursor, else null (cursor unmoved). */
  private parseClassEscape(): CharTest | null {
    const p = this.p;
    const at = this.i;
    const e = p[at + 1];
    if (e !== undefined && 'dswDSW'.includes(e)) {
      const ranges = PERL_CLASSES[e.toLowerCase()];
      const negate = e !== e.toLowerCase();
      this.i += 2;
      return (cp) => inRanges(ranges, cp) !== negate;
    }
    if (e === 'p' || e === 'P') {
      let name: string;
      if (p[at + 2] === '{') {
        const close = p.indexOf('}', at + 3);
        if (close === -1) this.fail('missing closing } in Unicode class', at);
        name = p.slice(at + 3, close);
        this.i = close + 1;
      } else {
        name = p[at + 2] ?? '';
        this.i = at + 3;
      }
      let negate = e === 'P';
      if (name.startsWith('^')) {
        negate = !negate;
        name = name.slice(1);
      }
      const re = name === 'Any' ? /^[^]$/u : unicodeClass(name);
      if (re === null) this.fail(`unknown Unicode class ${JSON.stringify(name)}`, at);
      return (cp) => re.test(String.fromCodePoint(cp)) !== negate;
    }
    return null;
  }

  /** A single-character escape at the cursor; returns its code point. */
  private parseCharEscape(): number {
    const p = this.p;
    const at = this.i;
    const e = p[at + 1];
    if (e === undefined) this.fail('trailing backslash', at);
    const simple: Record<string, number> = { a: 7, f: 12, t: 9, n: 10, r: 13, v: 11 };
    if (Object.hasOwn(simple, e)) {
      this.i += 2;
      return simple[e];
    }
    // As in RE2: \0, or \1-\7 followed by another octal digit, is an octal escape (up to three
    // digits); any other \<digit> would be a backreference.
    const octal = e === '0' || (e >= '1' && e <= '7' && /[0-7]/.test(p[at + 2] ?? ''));
    if (!octal && e >= '1' && e <= '9') this.fail('backreferences are not supported', at);
    if (octal) {
      const m = /^[0-7]{1,3}/.exec(p.slice(at + 1, at + 4)) as RegExpExecArray;
      this.i += 1 + m[0].length;
      return parseInt(m[0], 8);
    }
    if (e === 'x') {
      const braced = /^x\{([0-9A-Fa-f]{1,6})\}/.exec(p.slice(at + 1, at + 11));
      const plain = /^x([0-9A-Fa-f]{2})/.exec(p.slice(at + 1, at + 4));
      const m = braced ?? plain;
      if (!m) this.fail('invalid \\x escape', at);
      const cp = parseInt(m[1], 16);
      if (cp > 0x10ffff) this.fail('invalid \\x escape', at);
      this.i += 1 + m[0].length;
      return cp;
    }
    if (e === 'k') this.fail('backreferences are not supported', at);
    // Any ASCII punctuation may be escaped to stand for itself; other escapes are errors in RE2.
    if (/^[!-/:-@[-`{-~]$/.test(e)) {
      this.i += 2;
      return cpOf(e);
    }
    this.fail(`invalid escape \\${e}`, at);
  }

  private parseClass(): RNode {
    const p = this.p;
    const open = this.i;
    this.i += 1;
    let negate = false;
    if (p[this.i] === '^') {
      negate = true;
      this.i += 1;
    }
    const ranges: Range[] = [];
    const tests: CharTest[] = [];
    let first = true;
    for (;;) {
      if (this.i >= p.length) this.fail("missing closing ']'", open);
      const c = p[this.i];
      // RE2 takes a ']' right after '[' or '[^' as a literal.
      if (c === ']' && !first) break;
      first = false;
      if (c === '[' && p[this.i + 1] === ':') {
        const m = /^\[:(\^?)([a-z]+):\]/.exec(p.slice(this.i, this.i + 14));
        if (m) {
          const set = POSIX_CLASSES[m[2]];
          if (set === undefined) this.fail(`unknown POSIX class [:${m[2]}:]`);
          const neg = m[1] === '^';
          tests.push((cp) => inRanges(set, cp) !== neg);
          this.i += m[0].length;
          continue;
        }
      }
      if (c === '\\') {
        const cls = this.parseClassEscape();
        if (cls) {
          tests.push(cls);
          continue;
        }
      }
      const lo = this.classChar();
      if (p[this.i] === '-' && p[this.i + 1] !== ']' && this.i + 1 < p.length) {
        const dash = this.i;
        this.i += 1;
        const hi = this.classChar();
        if (hi < lo) this.fail('invalid character class range', dash);
        ranges.push([lo, hi]);
      } else {
        ranges.push([lo, lo]);
      }
    }
    this.i += 1;
    const member: CharTest = (cp) => inRanges(ranges, cp) || tests.some((t) => t(cp));
    const folded = foldTest(member, this.flags.i);
    return { t: 'char', test: (cp) => folded(cp) !== negate };
  }

  /** One character inside a class (literal or escape); returns its code point. */
  private classChar(): number {
    const p = this.p;
    if (p[this.i] === '\\') return this.parseCharEscape();
    const cp = cpOf(p.slice(this.i));
    this.i += cp > 0xffff ? 2 : 1;
    return cp;
  }
}

// ---------------------------------------------------------------------------------------------
// Compiler to a Pike-style program, and its simulation

type Inst =
  | { op: 'char'; test: CharTest; next: number }
  | { op: 'split'; x: number; y: number }
  | { op: 'jmp'; x: number }
  | { op: 'assert'; kind: AssertKind; next: number }
  | { op: 'match' };

function compile(root: RNode): Inst[] {
  const prog: Inst[] = [];
  const emit = (inst: Inst): number => {
    if (prog.length >= MAX_PROGRAM_SIZE) {
      throw new Rejected(
        `regular expression is too large once repeats are expanded (limit ${MAX_PROGRAM_SIZE} instructions)`,
      );
    }
    prog.push(inst);
    return prog.length - 1;
  };
  // Placeholders are patched once the target index is known.
  const patchNext = (at: number, target: number): void => {
    const inst = prog[at];
    if (inst.op === 'char' || inst.op === 'assert') inst.next = target;
    else if (inst.op === 'jmp') inst.x = target;
  };

  const gen = (n: RNode): void => {
    switch (n.t) {
      case 'empty':
        return;
      case 'char': {
        const at = emit({ op: 'char', test: n.test, next: -1 });
        patchNext(at, at + 1);
        return;
      }
      case 'assert': {
        const at = emit({ op: 'assert', kind: n.kind, next: -1 });
        patchNext(at, at + 1);
        return;
      }
      case 'cat':
        for (const item of n.items) gen(item);
        return;
      case 'alt': {
        // split L1, L2; L1: a; jmp end; L2: b; ...
        const jumps: number[] = [];
        for (let k = 0; k < n.items.length - 1; k++) {
          const split = emit({ op: 'split', x: -1, y: -1 });
          (prog[split] as { x: number }).x = prog.length;
          gen(n.items[k]);
          jumps.push(emit({ op: 'jmp', x: -1 }));
          (prog[split] as { y: number }).y = prog.length;
        }
        gen(n.items[n.items.length - 1]);
        for (const j of jumps) patchNext(j, prog.length);
        return;
      }
      case 'repeat': {
        for (let k = 0; k < n.min; k++) gen(n.node);
        if (n.max === Infinity) {
          // L: split body, end; body; jmp L
          const loop = emit({ op: 'split', x: -1, y: -1 });
          (prog[loop] as { x: number }).x = prog.length;
          gen(n.node);
          emit({ op: 'jmp', x: loop });
          (prog[loop] as { y: number }).y = prog.length;
          return;
        }
        // Optional copies: split body, end; body; split body, end; body ...
        const splits: number[] = [];
        for (let k = n.min; k < n.max; k++) {
          const split = emit({ op: 'split', x: -1, y: -1 });
          (prog[split] as { x: number }).x = prog.length;
          splits.push(split);
          gen(n.node);
        }
        for (const s of splits) (prog[s] as { y: number }).y = prog.length;
        return;
      }
    }
  };

  gen(root);
  emit({ op: 'match' });
  return prog;
}

const OP_CHAR = 0;
const OP_SPLIT = 1;
const OP_JMP = 2;
const OP_ASSERT = 3;
const OP_MATCH = 4;
const ASSERT_CODES: Record<AssertKind, number> = {
  bot: 0,
  eot: 1,
  bol: 2,
  eol: 3,
  word: 4,
  nonword: 5,
};

/** The program flattened into typed arrays, with ASCII answers of each char test precomputed. */
interface Machine {
  op: Uint8Array;
  /** next (char, assert), x (split, jmp) */
  a: Int32Array;
  /** y (split), assert code (assert) */
  b: Int32Array;
  tests: CharTest[];
  ascii: Uint8Array[];
}

function assemble(prog: Inst[]): Machine {
  const size = prog.length;
  const m: Machine = {
    op: new Uint8Array(size),
    a: new Int32Array(size),
    b: new Int32Array(size),
    tests: new Array<CharTest>(size),
    ascii: new Array<Uint8Array>(size),
  };
  // Repeats reuse one test function for every copy, so tables are shared per function.
  const tables = new Map<CharTest, Uint8Array>();
  const noTable = new Uint8Array(0);
  prog.forEach((inst, pc) => {
    m.tests[pc] = () => false;
    m.ascii[pc] = noTable;
    switch (inst.op) {
      case 'char': {
        m.op[pc] = OP_CHAR;
        m.a[pc] = inst.next;
        m.tests[pc] = inst.test;
        let table = tables.get(inst.test);
        if (table === undefined) {
          table = new Uint8Array(128);
          for (let cp = 0; cp < 128; cp++) table[cp] = inst.test(cp) ? 1 : 0;
          tables.set(inst.test, table);
        }
        m.ascii[pc] = table;
        break;
      }
      case 'split':
        m.op[pc] = OP_SPLIT;
        m.a[pc] = inst.x;
        m.b[pc] = inst.y;
        break;
      case 'jmp':
        m.op[pc] = OP_JMP;
        m.a[pc] = inst.x;
        break;
      case 'assert':
        m.op[pc] = OP_ASSERT;
        m.a[pc] = inst.next;
        m.b[pc] = ASSERT_CODES[inst.kind];
        break;
      case 'match':
        m.op[pc] = OP_MATCH;
        break;
    }
  });
  return m;
}

// The simulation is memoised as a lazy DFA: a state is the set of threads waiting to read the next
// character (plus what the previous character was, for ^ $ \b), and each transition is computed
// once by stepping the NFA and then cached. Filters run one pattern over many items, so most
// steps become a map lookup. The cache is bounded and simply dropped when full.
const MAX_DFA_STATES = 1024;
const MAX_DFA_THREADS = 1 << 16;
const MAX_DFA_TRANSITIONS = 1 << 14;

// Classes of the previous character, with a representative used to evaluate assertions.
const PREV_REPRESENTATIVE = [-1, NEWLINE, 0x61, 0x20];
const prevClassOf = (cp: number): number =>
  cp === -1 ? 0 : cp === NEWLINE ? 1 : isWordChar(cp) ? 2 : 3;

interface DState {
  /** Sorted program counters of the threads waiting at this point. */
  roots: Int32Array;
  prevClass: number;
  /** By next code point: the next state, true for "a match was found", false for "none can be". */
  trans: Map<number, DState | boolean>;
  atEnd: boolean | undefined;
}

class Matcher {
  private readonly anchored: boolean;
  private readonly seen: Int32Array;
  private readonly added: Int32Array;
  private readonly stack: Int32Array;
  private readonly threads: Int32Array;
  private gen = 0;
  private states = new Map<string, DState>();
  private storedThreads = 0;
  private storedTransitions = 0;

  constructor(private readonly m: Machine) {
    const size = m.op.length;
    this.anchored = m.op[0] === OP_ASSERT && m.b[0] === ASSERT_CODES.bot;
    this.seen = new Int32Array(size);
    this.added = new Int32Array(size);
    this.stack = new Int32Array(size * 2 + 2);
    this.threads = new Int32Array(size + 1);
  }

  /** Is there a match anywhere in `subject`? */
  test(subject: string): boolean {
    let state = this.state(Int32Array.of(0), 0);
    for (const ch of subject) {
      const cp = cpOf(ch);
      let t = state.trans.get(cp);
      if (t === undefined) {
        t = this.step(state, cp);
        // Forgetting the cache also drops the transitions stored in its states.
        if (++this.storedTransitions > MAX_DFA_TRANSITIONS) this.reset();
        state.trans.set(cp, t);
      }
      if (typeof t === 'boolean') return t;
      state = t;
    }
    state.atEnd ??= this.step(state, -1) === true;
    return state.atEnd;
  }

  private reset(): void {
    this.states = new Map();
    this.storedThreads = 0;
    this.storedTransitions = 0;
  }

  private state(roots: Int32Array, prevClass: number): DState {
    const key = `${prevClass}:${roots.join(',')}`;
    let s = this.states.get(key);
    if (s === undefined) {
      if (
        this.states.size >= MAX_DFA_STATES ||
        this.storedThreads + roots.length > MAX_DFA_THREADS
      ) {
        this.reset();
      }
      s = { roots, prevClass, trans: new Map(), atEnd: undefined };
      this.states.set(key, s);
      this.storedThreads += roots.length;
    }
    return s;
  }

  /**
   * Follows the empty transitions from `from` with `next` as the coming character (-1 at the end
   * of the subject), then reads `next`. A Thompson step: threads at the same instruction merge, so
   * it costs O(program size).
   */
  private step(from: DState, next: number): DState | boolean {
    const { op, a, b, tests, ascii } = this.m;
    const { seen, added, stack, threads } = this;
    const prev = PREV_REPRESENTATIVE[from.prevClass];
    this.gen += 1;
    const gen = this.gen;
    let count = 0;
    for (const root of from.roots) {
      let sp = 0;
      stack[sp++] = root;
      while (sp > 0) {
        const pc = stack[--sp];
        if (seen[pc] === gen) continue;
        seen[pc] = gen;
        switch (op[pc]) {
          case OP_MATCH:
            return true;
          case OP_JMP:
            stack[sp++] = a[pc];
            break;
          case OP_SPLIT:
            stack[sp++] = b[pc];
            stack[sp++] = a[pc];
            break;
          case OP_ASSERT:
            if (assertionHolds(b[pc], prev, next)) stack[sp++] = a[pc];
            break;
          default:
            if (next !== -1 && (next < 128 ? ascii[pc][next] === 1 : tests[pc](next))) {
              const target = a[pc];
              if (added[target] !== gen) {
                added[target] = gen;
                threads[count++] = target;
              }
            }
        }
      }
    }
    if (next === -1) return false;
    // Unanchored search: a new attempt may start at every position.
    if (!this.anchored && added[0] !== gen) threads[count++] = 0;
    if (count === 0) return false;
    return this.state(threads.slice(0, count).sort(), prevClassOf(next));
  }
}

function assertionHolds(code: number, prev: number, next: number): boolean {
  switch (code) {
    case 0:
      return prev === -1;
    case 1:
      return next === -1;
    case 2:
      return prev === -1 || prev === NEWLINE;
    case 3:
      return next === -1 || next === NEWLINE;
    case 4:
      return isWordChar(prev) !== isWordChar(next);
    default:
      return isWordChar(prev) === isWordChar(next);
  }
}
