import { expect } from 'chai';
import {
  compileFilter,
  MAX_FILTER_DEPTH,
  MAX_FILTER_LENGTH,
  MAX_FILTER_REGEXES,
} from '../../../src/api/filter.js';
import { MeshError } from '../../../src/core/errors.js';

// Data shaped like Consul's responses.
const catalogWeb = {
  ID: 'n1-id',
  Node: 'node-1',
  Address: '10.0.0.1',
  NodeMeta: { rack: 'r1' },
  ServiceID: 'web-1',
  ServiceName: 'web',
  ServiceTags: ['v1', 'primary'],
  ServiceMeta: { version: '2', 'my-key': 'yes' },
  ServicePort: 8080,
  ServiceEnableTagOverride: false,
};
const catalogApi = {
  ID: 'n2-id',
  Node: 'node-2',
  Address: '10.0.0.2',
  NodeMeta: { rack: 'r2' },
  ServiceID: 'api-1',
  ServiceName: 'api',
  ServiceTags: ['v2', 'canary'],
  ServiceMeta: {},
  ServicePort: 9090,
  ServiceEnableTagOverride: true,
};
const agentWeb = { ID: 'web-1', Service: 'web', Tags: ['v1'], Meta: { env: 'dev' }, Port: 8080 };
const agentDb = { ID: 'db-1', Service: 'db', Tags: [], Meta: {}, Port: 5432 };
const entryWeb = {
  Node: { Node: 'node-1', Meta: { rack: 'r1' } },
  Service: { Service: 'web', Tags: ['v1'], Meta: { env: 'staging' }, Port: 8080 },
  Checks: [
    { CheckID: 'serfHealth', Status: 'passing' },
    { CheckID: 'service:web-1', Status: 'critical' },
  ],
};
const entryWebProd = {
  Node: { Node: 'node-2', Meta: { rack: 'r1' } },
  Service: { Service: 'web', Tags: ['v2'], Meta: { env: 'prod' }, Port: 8080 },
  Checks: [
    { CheckID: 'serfHealth', Status: 'passing' },
    { CheckID: 'service:web-2', Status: 'passing' },
  ],
};
const entryNoChecks = {
  Node: { Node: 'node-3', Meta: {} },
  Service: { Service: 'cache', Tags: null, Meta: null, Port: 6379 },
  Checks: [],
};

function run(expr: string, items: unknown[]): unknown[] {
  return items.filter(compileFilter(expr));
}

function ids(expr: string, items: Array<{ ID: string }>): string[] {
  return items.filter(compileFilter(expr)).map((i) => i.ID);
}

function syntaxError(expr: string): MeshError {
  try {
    compileFilter(expr);
  } catch (err) {
    expect(err).to.be.instanceOf(MeshError);
    const e = err as MeshError;
    expect(e.status).to.equal(400);
    expect(e.field).to.equal('filter');
    expect(e.code).to.equal('MESH_ERR_BAD_REQUEST');
    return e;
  }
  expect.fail(`expected ${JSON.stringify(expr)} to be rejected`);
}

describe('api/filter compileFilter', () => {
  describe('expressions Consul users send', () => {
    it('ID == "web-1" on agent services', () => {
      expect(ids('ID == "web-1"', [agentWeb, agentDb])).to.deep.equal(['web-1']);
    });

    it('ServiceName == "web" on catalog services', () => {
      expect(run('ServiceName == "web"', [catalogWeb, catalogApi])).to.deep.equal([catalogWeb]);
    });

    it('Service.Tags contains "v1" on service entries', () => {
      expect(run('Service.Tags contains "v1"', [entryWeb, entryWebProd])).to.deep.equal([entryWeb]);
    });

    it('ServiceMeta.version == "2"', () => {
      expect(run('ServiceMeta.version == "2"', [catalogWeb, catalogApi])).to.deep.equal([
        catalogWeb,
      ]);
    });

    it('Service.Meta.env != "prod" and Node.Meta.rack == "r1"', () => {
      const expr = 'Service.Meta.env != "prod" and Node.Meta.rack == "r1"';
      expect(run(expr, [entryWeb, entryWebProd, entryNoChecks])).to.deep.equal([entryWeb]);
    });

    it('not (ServiceTags contains "canary")', () => {
      expect(run('not (ServiceTags contains "canary")', [catalogWeb, catalogApi])).to.deep.equal([
        catalogWeb,
      ]);
    });

    it('"v1" in ServiceTags and "v1" not in ServiceTags', () => {
      expect(run('"v1" in ServiceTags', [catalogWeb, catalogApi])).to.deep.equal([catalogWeb]);
      expect(run('"v1" not in ServiceTags', [catalogWeb, catalogApi])).to.deep.equal([catalogApi]);
    });

    it('ServiceMeta is empty / is not empty', () => {
      expect(run('ServiceMeta is empty', [catalogWeb, catalogApi])).to.deep.equal([catalogApi]);
      expect(run('ServiceMeta is not empty', [catalogWeb, catalogApi])).to.deep.equal([catalogWeb]);
    });

    it('ServiceName matches "^we"', () => {
      expect(run('ServiceName matches "^we"', [catalogWeb, catalogApi])).to.deep.equal([
        catalogWeb,
      ]);
      expect(run('ServiceName not matches "^we"', [catalogWeb, catalogApi])).to.deep.equal([
        catalogApi,
      ]);
    });

    it('ServicePort == 8080, bare or quoted', () => {
      expect(run('ServicePort == 8080', [catalogWeb, catalogApi])).to.deep.equal([catalogWeb]);
      expect(run('ServicePort == "8080"', [catalogWeb, catalogApi])).to.deep.equal([catalogWeb]);
      expect(run('ServicePort != 8080', [catalogWeb, catalogApi])).to.deep.equal([catalogApi]);
    });

    it('Checks.Status == "critical" (any check)', () => {
      expect(run('Checks.Status == "critical"', [entryWeb, entryWebProd])).to.deep.equal([
        entryWeb,
      ]);
    });

    it('Checks.Status != "passing" means some check is not passing, as in go-bexpr', () => {
      expect(run('Checks.Status != "passing"', [entryWeb, entryWebProd])).to.deep.equal([entryWeb]);
      // "no check is passing" is spelled with not:
      expect(run('not Checks.Status == "passing"', [entryWeb, entryWebProd])).to.deep.equal([]);
    });

    it('an empty list matches nothing when a selector passes through it', () => {
      for (const expr of [
        'Checks.Status == "passing"',
        'Checks.Status != "passing"',
        'Checks.Status is empty',
        'Checks.Status is not empty',
      ]) {
        expect(compileFilter(expr)(entryNoChecks), expr).to.equal(false);
      }
    });

    it('a numeric segment indexes a list', () => {
      expect(compileFilter('Checks.1.Status == critical')(entryWeb)).to.equal(true);
      expect(compileFilter('Checks.0.Status == critical')(entryWeb)).to.equal(false);
      expect(compileFilter('Checks.7.Status is empty')(entryWeb)).to.equal(true);
    });

    it('quoted map keys in brackets', () => {
      expect(compileFilter('ServiceMeta["my-key"] == "yes"')(catalogWeb)).to.equal(true);
      expect(compileFilter('ServiceMeta[ `my-key` ] == yes')(catalogWeb)).to.equal(true);
      expect(compileFilter('ServiceMeta["my-key"] is empty')(catalogApi)).to.equal(true);
      expect(compileFilter('NodeMeta["rack"] == r1')(catalogWeb)).to.equal(true);
    });

    it('or, and, not and parentheses with the usual precedence', () => {
      const items = [catalogWeb, catalogApi];
      expect(run('ServiceName == web or ServiceName == api', items)).to.have.length(2);
      // and binds tighter than or
      expect(
        run('ServiceName == api or ServiceName == web and ServicePort == 1', items),
      ).to.deep.equal([catalogApi]);
      expect(
        run('(ServiceName == api or ServiceName == web) and ServicePort == 1', items),
      ).to.deep.equal([]);
      expect(run('not ServiceName == api and not ServiceName == web', items)).to.deep.equal([]);
      expect(run('not not ServiceName == api', items)).to.deep.equal([catalogApi]);
      expect(run('not(ServiceName == api)', items)).to.deep.equal([catalogWeb]);
      expect(run('((ServiceName == "api"))', items)).to.deep.equal([catalogApi]);
    });

    it('accepts flexible whitespace', () => {
      expect(compileFilter('  ServiceName=="web"\n\tand ServicePort==8080 ')(catalogWeb)).to.equal(
        true,
      );
    });
  });

  describe('value conversion', () => {
    it('compares strings as text', () => {
      expect(compileFilter('ServiceMeta.version == 2')(catalogWeb)).to.equal(true);
      expect(compileFilter('ServiceMeta.version == 2.0')(catalogWeb)).to.equal(false);
      expect(compileFilter('ServiceName == Web')(catalogWeb)).to.equal(false);
    });

    it('compares numbers numerically', () => {
      expect(compileFilter('ServicePort == 8080.0')(catalogWeb)).to.equal(true);
      expect(compileFilter('ServicePort == "8e3"')({ ServicePort: 8000 })).to.equal(true);
      expect(compileFilter('ServicePort == http')(catalogWeb)).to.equal(false);
      expect(compileFilter('Weight == -1.5')({ Weight: -1.5 })).to.equal(true);
    });

    it('compares booleans with Go ParseBool spellings', () => {
      expect(compileFilter('ServiceEnableTagOverride == true')(catalogApi)).to.equal(true);
      expect(compileFilter('ServiceEnableTagOverride == "True"')(catalogApi)).to.equal(true);
      expect(compileFilter('ServiceEnableTagOverride == 1')(catalogApi)).to.equal(true);
      expect(compileFilter('ServiceEnableTagOverride == false')(catalogWeb)).to.equal(true);
      expect(compileFilter('ServiceEnableTagOverride == true')(catalogWeb)).to.equal(false);
      expect(compileFilter('ServiceEnableTagOverride == yes')(catalogApi)).to.equal(false);
    });

    it('contains: list membership (converted per element), substring, map key', () => {
      expect(compileFilter('Ports contains 80')({ Ports: [80, 443] })).to.equal(true);
      expect(compileFilter('Ports contains "443"')({ Ports: [80, 443] })).to.equal(true);
      expect(compileFilter('Ports contains 8')({ Ports: [80, 443] })).to.equal(false);
      expect(compileFilter('ServiceName contains "e"')(catalogWeb)).to.equal(true);
      expect(compileFilter('"eb" in ServiceName')(catalogWeb)).to.equal(true);
      expect(compileFilter('ServiceMeta contains version')(catalogWeb)).to.equal(true);
      expect(compileFilter('"my-key" in ServiceMeta')(catalogWeb)).to.equal(true);
      expect(compileFilter('ServiceMeta contains "2"')(catalogWeb)).to.equal(false);
      expect(compileFilter('ServicePort contains 8')(catalogWeb)).to.equal(false);
      expect(compileFilter('ServiceTags not contains canary')(catalogApi)).to.equal(false);
      expect(compileFilter('v1 in ServiceTags')(catalogWeb)).to.equal(true);
    });

    it('is empty: missing, null, "", [], {} but never a number or boolean', () => {
      const item = { S: '', L: [], M: {}, N: null, Zero: 0, F: false, Full: 'x' };
      for (const sel of ['S', 'L', 'M', 'N', 'Missing', 'M.deeper', 'Full.deeper']) {
        expect(compileFilter(`${sel} is empty`)(item), sel).to.equal(true);
      }
      for (const sel of ['Zero', 'F', 'Full']) {
        expect(compileFilter(`${sel} is empty`)(item), sel).to.equal(false);
      }
    });

    it('== on a list or map is false (so != is true)', () => {
      expect(compileFilter('ServiceTags == v1')(catalogWeb)).to.equal(false);
      expect(compileFilter('ServiceTags != v1')(catalogWeb)).to.equal(true);
      expect(compileFilter('ServiceMeta == x')(catalogWeb)).to.equal(false);
    });

    it('matches only strings', () => {
      expect(compileFilter('ServicePort matches "80"')(catalogWeb)).to.equal(false);
      expect(compileFilter('ServiceTags matches "v1"')(catalogWeb)).to.equal(false);
    });

    it('decodes string escapes and raw strings', () => {
      const item = { Q: 'say "hi"', B: 'a\\b', T: 'tab\there', U: 'caf\u00e9 \u{1F600}' };
      expect(compileFilter('Q == "say \\"hi\\""')(item)).to.equal(true);
      expect(compileFilter('B == "a\\\\b"')(item)).to.equal(true);
      expect(compileFilter('B == `a\\b`')(item)).to.equal(true);
      expect(compileFilter('T == "tab\\there"')(item)).to.equal(true);
      expect(compileFilter('T == "tab\\x09here"')(item)).to.equal(true);
      expect(compileFilter('T == "tab\\011here"')(item)).to.equal(true);
      expect(compileFilter('U == "caf\\u00e9 \\U0001F600"')(item)).to.equal(true);
      expect(compileFilter('U == "café 😀"')(item)).to.equal(true);
    });
  });

  describe('selectors on plain JSON', () => {
    it('are case-sensitive', () => {
      expect(compileFilter('servicename == web')(catalogWeb)).to.equal(false);
      expect(compileFilter('servicename is empty')(catalogWeb)).to.equal(true);
    });

    it('read unknown fields as missing instead of failing', () => {
      const f = compileFilter('NoSuch.Field == "x"');
      expect(f(catalogWeb)).to.equal(false);
      expect(compileFilter('NoSuch != "x"')(catalogWeb)).to.equal(true);
      expect(compileFilter('NoSuch not contains "x"')(catalogWeb)).to.equal(true);
      expect(compileFilter('NoSuch not matches "x"')(catalogWeb)).to.equal(true);
      expect(compileFilter('NoSuch is not empty')(catalogWeb)).to.equal(false);
    });

    it('see only own fields, never the prototype', () => {
      expect(compileFilter('constructor is empty')({})).to.equal(true);
      expect(compileFilter('toString is not empty')({})).to.equal(false);
      expect(compileFilter('ServiceMeta contains "constructor"')(catalogWeb)).to.equal(false);
      expect(compileFilter('ServiceMeta contains "__proto__"')(catalogWeb)).to.equal(false);
    });

    it('cope with non-object items', () => {
      const f = compileFilter('Service.Tags contains "v1"');
      for (const item of [null, undefined, 42, 'web', [], true]) expect(f(item)).to.equal(false);
      expect(compileFilter('Service is empty')(null)).to.equal(true);
    });

    it('fan out through nested lists', () => {
      const item = { Groups: [{ Members: [{ Name: 'a' }] }, { Members: [{ Name: 'b' }] }] };
      expect(compileFilter('Groups.Members.Name == b')(item)).to.equal(true);
      expect(compileFilter('Groups.Members.Name == c')(item)).to.equal(false);
    });
  });

  it('compiles the empty string to match-all', () => {
    expect(compileFilter('')(catalogWeb)).to.equal(true);
  });

  describe('syntax errors name the position', () => {
    const cases: Array<[string, number, RegExp]> = [
      ['ServiceName = "web"', 13, /expected an operator/],
      ['ServiceName contians "x"', 13, /expected an operator/],
      ['ServiceName == ', 16, /expected a value after '=='/],
      ['ServiceName == "web" and', 25, /expected a selector or value/],
      ['ServiceName == "web" extra', 22, /expected 'and', 'or' or the end/],
      ['(ServiceName == "web"', 22, /expected '\)' to close the '\(' at position 1/],
      ['ServiceName == "web")', 21, /expected 'and', 'or'/],
      ['ServiceName == "unterminated', 16, /unterminated string literal/],
      ['ServiceName == `raw', 16, /unterminated string literal/],
      ['ServiceName == web-1', 19, /quote values that contain punctuation/],
      ['ServicePort == 80a', 16, /invalid number literal/],
      ['ServicePort == 08080', 16, /invalid number literal/],
      ['"web" == ServiceName', 7, /must be followed by 'in' or 'not in'/],
      ['"v1" in "tags"', 9, /expected a selector after 'in'/],
      ['ServiceMeta is', 15, /expected 'empty' after 'is'/],
      ['ServiceMeta is not full', 20, /expected 'empty' after 'is not'/],
      ['ServiceTags not has "x"', 17, /expected 'contains', 'in' or 'matches' after 'not'/],
      ['ServiceMeta[my-key] == x', 13, /expected a quoted key/],
      ['ServiceMeta["my-key" == x', 22, /expected '\]' to close the '\[' at position 12/],
      ['Service. == x', 9, /expected a field name after '.'/],
      ['ServiceName == "a\\qb"', 18, /unknown escape sequence \\q/],
      ['ServiceName == "\\xff"', 17, /byte escapes above/],
      ['ServiceName == "\\ud800"', 17, /not a valid Unicode code point/],
      ['== "web"', 1, /expected a selector or value/],
      ['   ', 4, /expected a selector or value, found the end/],
      [
        'ServiceName matches "a(b"',
        21,
        /regular expression "a\(b" rejected: missing closing \): `a\(b`/,
      ],
    ];
    for (const [expr, position, message] of cases) {
      it(JSON.stringify(expr), () => {
        const err = syntaxError(expr);
        expect(err.message).to.match(new RegExp(`at position ${position}:`));
        expect(err.message).to.match(message);
      });
    }
  });

  describe('hostile input is rejected or handled quickly', () => {
    it('rejects expressions longer than 4 KiB', () => {
      const long = `ServiceName == "${'a'.repeat(MAX_FILTER_LENGTH)}"`;
      expect(syntaxError(long).message).to.match(/longer than the limit of 4096 bytes/);
      // The limit counts UTF-8 bytes: 1400 three-byte characters are over it.
      expect(syntaxError(`ServiceName == "${'€'.repeat(1400)}"`).message).to.match(/4096 bytes/);
      const huge = 'x'.repeat(10_000_000);
      const start = performance.now();
      syntaxError(huge);
      expect(performance.now() - start).to.be.below(100);
    });

    it('accepts nesting up to the depth limit and rejects deeper', () => {
      const nest = (n: number): string => `${'('.repeat(n)}ServiceName == web${')'.repeat(n)}`;
      expect(compileFilter(nest(MAX_FILTER_DEPTH))(catalogWeb)).to.equal(true);
      expect(syntaxError(nest(MAX_FILTER_DEPTH + 1)).message).to.match(
        /at position 33: expression nests deeper than 32 levels/,
      );
      expect(syntaxError(`${'not '.repeat(1000)}ServiceName == web`).message).to.match(
        /nests deeper than 32 levels/,
      );
      expect(syntaxError('('.repeat(4000)).message).to.match(/nests deeper/);
    });

    it('handles long flat and/or chains without recursion trouble', () => {
      const expr = Array.from({ length: 150 }, (_, i) => `ServicePort == ${i}`).join(' or ');
      expect(compileFilter(expr)(catalogWeb)).to.equal(false);
      expect(compileFilter(`${expr} or ServicePort == 8080`)(catalogWeb)).to.equal(true);
    });

    it('rejects backreferences, lookaround and over-long patterns', () => {
      for (const [pattern, message] of [
        ['(a)\\\\1', /backreferences are not supported/],
        ['(?<n>a)\\\\k<n>', /backreferences are not supported/],
        ['a(?=b)', /lookaround assertions are not supported/],
        ['a(?!b)', /lookaround/],
        ['(?<=a)b', /lookaround/],
        ['(?<!a)b', /lookaround/],
        ['a'.repeat(257), /257 characters long \(limit 256\)/],
        ['a{1001}', /invalid repeat count: `\{1001\}`/],
        ['(a{1000}){1000}', /invalid repeat count/],
        ['a{1000}b{1000}', /too large once repeats are expanded/],
      ] as const) {
        const err = syntaxError(`ServiceName matches "${pattern}"`);
        expect(err.message, pattern).to.match(message);
        expect(err.message).to.match(/at position 21:/);
      }
    });

    it('runs catastrophic-backtracking patterns in linear time', () => {
      const subjects = ['a'.repeat(5000) + '!', 'ab'.repeat(2500) + '!'];
      const start = performance.now();
      for (const pattern of [
        '(a+)+$',
        '^(a|aa)*$',
        '^(a|a)*$',
        '^(a*)*b$',
        '.*.*.*.*.*.*x',
        '(.*a){20}!x',
      ]) {
        const f = compileFilter(`Name matches "${pattern}"`);
        for (const Name of subjects) expect(f({ Name }), pattern).to.equal(false);
      }
      expect(performance.now() - start).to.be.below(2000);
    });

    it('limits the number of regular expressions in one filter', () => {
      const clause = (i: number): string => `Name matches "^${i}"`;
      const ok = Array.from({ length: MAX_FILTER_REGEXES }, (_, i) => clause(i)).join(' or ');
      expect(compileFilter(ok)({ Name: '15x' })).to.equal(true);
      expect(syntaxError(`${ok} or ${clause(99)}`).message).to.match(/more than 16 'matches'/);
    });
  });
});
