import { expect } from 'chai';
import { compileRegex, MAX_PROGRAM_SIZE } from '../../../src/core/re2.js';

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

describe('core/re2 compileRegex', () => {
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
    const cases: Array<[string, RegExp]> = [
      ['(a)\\1', /backreferences are not supported at pattern character 4/],
      ['(?<n>a)\\k<n>', /backreferences/],
      ['a(?=b)', /lookaround assertions are not supported at pattern character 2/],
      ['(?<=a)b', /lookaround/],
      ['a(?!b)', /lookaround/],
      ['(?<!a)b', /lookaround/],
      ['a'.repeat(257), /257 characters long/],
      ['a{1001}', /repeat count above 1000/],
      ['a{2,1}', /invalid repeat count/],
      ['a**', /invalid nested repetition operator/],
      ['a{2}{3}', /invalid nested repetition operator/],
      ['*a', /missing argument to repetition operator at pattern character 1/],
      ['a|+', /missing argument/],
      ['(a', /missing closing '\)' at pattern character 1/],
      ['a)', /unexpected '\)'/],
      ['[a', /missing closing '\]'/],
      ['[z-a]', /invalid character class range/],
      ['\\q', /invalid escape \\q/],
      ['\\C', /invalid escape \\C/],
      ['[\\b]', /invalid escape \\b/],
      ['a\\', /trailing backslash/],
      ['\\p{NoSuchClass}', /unknown Unicode class/],
      ['[[:nope:]]', /unknown POSIX class/],
      ['(?x)a', /invalid group syntax/],
      ['(?)a', /invalid group syntax/],
      ['(?:a{1000}){3}', /too large once repeats are expanded/],
    ];
    for (const [pattern, message] of cases) expect(rejected(pattern), pattern).to.match(message);
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
