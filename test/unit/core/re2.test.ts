import { expect } from 'chai';
import vm from 'node:vm';
import v8 from 'node:v8';
import { compileRegex, MAX_DFA_BYTES, MAX_PROGRAM_SIZE } from '../../../src/core/re2.js';

function re(pattern: string): (s: string) => boolean {
  const r = compileRegex(pattern);
  if (!r.ok) expect.fail(`${pattern}: ${r.reason}`);
  return r.test;
}

function rejected(pattern: string): string {
  const r = compileRegex(pattern);
  if (r.ok) expect.fail(`expected ${JSON.stringify(pattern)} to be rejected`);
  return r.reason;
}

describe('core/re2 compileRegex (re2js adapter)', () => {
  it('searches anywhere unless anchored', () => {
    expect(re('eb')('web')).to.equal(true);
    expect(re('^eb')('web')).to.equal(false);
    expect(re('^we')('web')).to.equal(true);
    expect(re('b$')('web')).to.equal(true);
    expect(re('^web$')('web')).to.equal(true);
    expect(re('^web$')('web\n')).to.equal(false); // RE2: $ is end of text only
    expect(re('')('')).to.equal(true);
  });

  it('supports the usual RE2 constructs', () => {
    const cases: Array<[string, string, boolean]> = [
      ['^web-[0-9]+$', 'web-12', true],
      ['^web-[0-9]+$', 'web-', false],
      ['^(web|api)-v\\d{1,3}$', 'api-v42', true],
      ['^(web|api)-v\\d{1,3}$', 'api-v4242', false],
      ['^(?:ab){2,}$', 'ababab', true],
      ['^(?:ab){2,}$', 'ab', false],
      ['^a{3}$', 'aaa', true],
      ['^a{3}$', 'aaaa', false],
      ['^a.c$', 'abc', true],
      ['^a.c$', 'a\nc', false],
      ['(?s)^a.c$', 'a\nc', true],
      ['(?m)^c$', 'ab\nc', true],
      ['^c$', 'ab\nc', false],
      ['(?i)^WEB$', 'web', true],
      ['(?i:W)eb', 'web', true],
      ['(?i:W)EB', 'web', false],
      ['a(?i)B', 'ab', true],
      ['(?i)[a-c]+x', 'ABCX', true],
      ['(?i)k', '\u212a', true],
      ['[^a-z]', 'abc', false],
      ['[^a-z]', 'ab1', true],
      ['[]a]', ']', true],
      ['[a-]$', '-', true],
      ['\\bweb\\b', 'my web app', true],
      ['\\bweb\\b', 'webapp', false],
      ['\\Bweb', 'cobweb', true],
      ['\\Aab\\z', 'ab', true],
      ['\\Aab\\z', 'ab\n', false],
      ['^\\w+\\s\\S+$', 'hello world', true],
      ['^\\D+$', 'abc', true],
      ['^\\W$', '-', true],
      ['[[:alpha:]]+[[:digit:]]', 'abc1', true],
      ['^[[:^digit:]]+$', 'abc', true],
      ['\\pL', '\u00e9', true],
      ['^\\p{Greek}+$', '\u03b1\u03b2', true],
      ['^\\PL$', '1', true],
      ['^\\x41\\x{263a}\\101$', 'A\u263aA', true],
      ['^\\Qa.b\\E$', 'a.b', true],
      ['^\\Qa.b\\E$', 'axb', false],
      ['^a\\.b\\-c\\/$', 'a.b-c/', true],
      ['^(?P<major>\\d+)\\.(?<minor>\\d+)$', '1.22', true],
      ['^.$', '\u{1F600}', true],
      ['^a+?b*?$', 'aab', true],
      ['x{', 'x{', true],
      ['^()*a$', 'a', true],
      ['^(a*)*$', 'aaa', true],
    ];
    for (const [pattern, subject, expected] of cases) {
      expect(re(pattern)(subject), `${pattern} on ${JSON.stringify(subject)}`).to.equal(expected);
    }
  });

  it('agrees with JavaScript RegExp on a set of common patterns', () => {
    const patterns = [
      '^we',
      'b$',
      '^(web|api)[0-9]*$',
      '[a-c]+-[0-9]{2,3}',
      '(a|b)*c',
      '^\\w+@\\w+\\.com$',
      '\\bv\\d\\b',
    ];
    const subjects = ['web', 'api12', 'abc-123', 'ababc', 'x@y.com', 'tag v1 x', 'v12', '', 'aaa'];
    for (const p of patterns) {
      const js = new RegExp(p);
      const ours = re(p);
      for (const s of subjects) expect(ours(s), `${p} on ${s}`).to.equal(js.test(s));
    }
  });

  it('stays correct when its transition cache overflows and is dropped', () => {
    // 2^11 reachable thread sets: more states than the cache keeps.
    const pattern = '[ab]*a[ab]{10}c';
    const ours = re(pattern);
    const js = new RegExp(pattern);
    let seed = 42;
    const next = (n: number): number => {
      // xorshift32: the low bits of a plain LCG repeat too soon for this.
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    for (let i = 0; i < 3000; i++) {
      let s = '';
      for (let k = 5 + next(60); k > 0; k--) s += 'abc'[next(i % 2 ? 2 : 3)];
      expect(ours(s), s).to.equal(js.test(s));
    }
  });

  it('rejects what RE2 does not have, or what we cannot run safely', () => {
    // Go's regexp wording (re2js is a port of it), with what RE2 lacks named and the position.
    const cases: Array<[string, RegExp]> = [
      ['(a)\\1', /^backreferences are not supported at pattern character 4$/],
      ['(?<n>a)\\k<n>', /backreferences/],
      ['a(?=b)', /^lookaround assertions are not supported at pattern character 2$/],
      ['(?<=a)b', /lookaround/],
      ['a(?!b)', /lookaround/],
      ['(?<!a)b', /lookaround/],
      ['a'.repeat(257), /257 characters long/],
      ['a{1001}', /invalid repeat count: `\{1001\}` at pattern character 2/],
      ['a{2,1}', /invalid repeat count/],
      ['a**', /invalid nested repetition operator/],
      ['a{2}{3}', /invalid nested repetition operator/],
      ['*a', /missing argument to repetition operator: `\*` at pattern character 1/],
      ['a|+', /missing argument/],
      ['(a', /missing closing \): `\(a` at pattern character 1/],
      ['a)', /unexpected \)/],
      ['[a', /missing closing \]/],
      ['[z-a]', /invalid character class range/],
      ['\\q', /invalid escape sequence: `\\q`/],
      ['\\C', /invalid escape sequence: `\\C`/],
      ['[\\b]', /invalid escape sequence: `\\b`/],
      ['a\\', /trailing backslash/],
      ['\\p{NoSuchClass}', /invalid character class range: `\\p\{NoSuchClass\}`/],
      ['[[:nope:]]', /invalid character class range: `\[:nope:\]`/],
      ['(?x)a', /invalid or unsupported Perl syntax/],
      ['(?:a{1000}){3}', /invalid repeat count/],
      ['a{1000}b{1000}', /too large once repeats are expanded/],
    ];
    for (const [pattern, message] of cases) expect(rejected(pattern), pattern).to.match(message);
  });

  it('accepts an empty flag group, as Go does', () => {
    expect(re('(?)a')('a')).to.equal(true);
  });

  it('matches the whole subject in whole mode, whatever the pattern says', () => {
    const whole = (p: string): ((s: string) => boolean) => {
      const r = compileRegex(p, 'whole');
      if (!r.ok) expect.fail(`${p}: ${r.reason}`);
      return r.test;
    };
    expect(whole('/api')('/api')).to.equal(true);
    expect(whole('/api')('/x/api/y')).to.equal(false);
    expect(whole('a|b')('ab')).to.equal(false);
    expect(whole('a|b')('b')).to.equal(true);
    expect(whole('(?m)^c$')('ab\nc')).to.equal(false);
    expect(whole('(?s).*')('a\nb')).to.equal(true);
    expect(whole('.*')('a\nb')).to.equal(false);
  });

  it('keeps what each compiled pattern caches bounded', () => {
    // Patterns whose automaton has millions of states; each is kept alive, as the intention
    // memo keeps them, after a subject has walked it through as many as it can build.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    let subject = '';
    let seed = 7;
    for (let i = 0; i < 60_000; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      subject += i % 20 === 19 ? 'c' : seed & 0x10000 ? 'a' : 'b';
    }
    gc();
    const before = process.memoryUsage().heapUsed;
    const kept = Array.from({ length: 12 }, (_, i) => {
      const test = re(`[ab]*a[ab]{${20 + i}}c|[ab]*b[ab]{${20 + i}}c`);
      expect(test(subject)).to.equal(false);
      return test;
    });
    gc();
    const perPattern = (process.memoryUsage().heapUsed - before) / kept.length;
    // re2js alone keeps up to ~8 MiB per pattern here; the adapter's cap is MAX_DFA_BYTES.
    expect(perPattern).to.be.below(4 * MAX_DFA_BYTES);
  });

  it('keeps matching linear on patterns that make backtracking engines explode', () => {
    const subject = 'a'.repeat(20_000) + '!';
    const start = performance.now();
    for (const p of [
      '(a+)+$',
      '^(a|aa)*$',
      '(a|a)*b',
      '^(a?){30}a{30}$',
      '(x+x+)+y',
      '.*.*.*.*.*.*x',
    ]) {
      expect(re(p)(subject), p).to.equal(false);
    }
    expect(performance.now() - start).to.be.below(2000);
  });

  it('bounds the cost of the largest program it accepts', () => {
    // Close to MAX_PROGRAM_SIZE instructions, every one live at every position.
    const pattern = `(?:\\w?){${Math.floor(MAX_PROGRAM_SIZE / 3) - 10}}x`;
    const test = re(pattern);
    const subjects = Array.from({ length: 200 }, (_, i) => `svc${i}-${'a'.repeat(40)}`);
    const start = performance.now();
    for (const s of subjects) expect(test(s)).to.equal(false);
    expect(performance.now() - start).to.be.below(2000);
  });
});
