/**
 * Control characters and Consul's metadata rules, on each path that reads a registration:
 * the API normalizer (agent and catalog bodies), service definition files (with
 * file:line:column), agent settings files (node_meta). Each vector is refused on every path
 * with a message naming the field; the values at the limits are accepted.
 */
import { expect } from 'chai';
import { isMeshError } from '../../../src/core/index.js';
import {
  controlCharProblem,
  metaKeyProblem,
  metaValueProblem,
  normalizeCheckType,
  normalizeServiceRegistration,
} from '../../../src/api/index.js';
import {
  formatDiagnostic,
  parseConfigFile,
  parseServiceDefinitions,
} from '../../../src/config/index.js';

const many = (n: number): Record<string, string> =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));

interface Vector {
  name: string;
  /** Fields merged into a valid registration {Name: "web"}. */
  fields: Record<string, unknown>;
  /** What the API's 400 says (field path and problem). */
  api: string;
  /** What a service definition file reports, after `file:line:col: `. */
  file: string;
}

const VECTORS: Vector[] = [
  {
    name: 'CR LF in a tag',
    fields: { Tags: ['ok', 'a\r\nX-Injected: 1'] },
    api: 'Tags[1]: tag contains a control character (U+000D at offset 1)',
    file: 'tag contains a control character (U+000D at offset 1)',
  },
  {
    name: 'NUL in a tag',
    fields: { Tags: ['\u0000'] },
    api: 'Tags[0]: tag contains a control character (U+0000 at offset 0)',
    file: 'U+0000',
  },
  {
    name: 'a tab in a tag',
    fields: { Tags: ['a\tb'] },
    api: 'Tags[0]: tag contains a control character (U+0009',
    file: 'U+0009',
  },
  {
    name: 'DEL in a tag',
    fields: { Tags: ['a\u007f'] },
    api: 'U+007F',
    file: 'U+007F',
  },
  {
    name: 'a C1 control in a tag',
    fields: { Tags: ['a\u0085'] },
    api: 'U+0085',
    file: 'U+0085',
  },
  {
    name: 'a Unicode line separator in a tag',
    fields: { Tags: ['a\u2028b'] },
    api: 'U+2028',
    file: 'U+2028',
  },
  {
    name: 'NUL in a meta key',
    fields: { Meta: { 'a\u0000b': 'v' } },
    api: 'Meta: key "a\\u0000b": meta key contains a control character (U+0000 at offset 1)',
    file: 'meta key contains a control character (U+0000 at offset 1)',
  },
  {
    name: 'LF in a meta key',
    fields: { Meta: { 'a\nb': 'v' } },
    api: 'Meta: key "a\\nb": meta key contains a control character (U+000A',
    file: 'U+000A',
  },
  {
    name: 'a space in a meta key',
    fields: { Meta: { 'a b': 'v' } },
    api: 'Meta: key "a b": meta key may contain only letters, digits, "_" and "-"',
    file: 'meta key may contain only letters, digits, "_" and "-"',
  },
  {
    name: 'a dot in a meta key',
    fields: { Meta: { 'a.b': 'v' } },
    api: 'meta key may contain only letters',
    file: 'meta key may contain only letters',
  },
  {
    name: 'a non-ASCII meta key',
    fields: { Meta: { clé: 'v' } },
    api: 'meta key may contain only letters',
    file: 'meta key may contain only letters',
  },
  {
    name: 'an empty meta key',
    fields: { Meta: { '': 'v' } },
    api: 'Meta: key "": a meta key cannot be empty',
    file: 'a meta key cannot be empty',
  },
  {
    name: 'a meta key of 129 characters',
    fields: { Meta: { ['k'.repeat(129)]: 'v' } },
    api: 'meta key is 129 characters long; at most 128 are allowed',
    file: 'meta key is 129 characters long; at most 128 are allowed',
  },
  {
    name: 'a meta value of 513 bytes',
    fields: { Meta: { k: 'x'.repeat(513) } },
    api: 'Meta.k: meta value is 513 bytes long; at most 512 are allowed',
    file: 'meta value is 513 bytes long; at most 512 are allowed',
  },
  {
    name: 'a meta value of 257 two-byte characters (514 bytes)',
    fields: { Meta: { k: 'é'.repeat(257) } },
    api: 'Meta.k: meta value is 514 bytes long; at most 512 are allowed',
    file: 'at most 512 are allowed',
  },
  {
    name: 'CR LF in a meta value',
    fields: { Meta: { k: 'a\r\nb' } },
    api: 'Meta.k: meta value contains a control character (U+000D at offset 1)',
    file: 'meta value contains a control character (U+000D at offset 1)',
  },
  {
    name: '65 meta pairs',
    fields: { Meta: many(65) },
    api: 'Meta: at most 64 meta pairs are allowed (got 65)',
    file: 'at most 64 pairs are allowed (got 65)',
  },
  {
    name: 'CR LF in the address',
    fields: { Address: '198.18.0.1\r\nHost: evil' },
    api: 'Address: contains a control character (U+000D at offset 10)',
    file: 'address contains a control character (U+000D at offset 10)',
  },
  {
    name: 'LF in a check name',
    fields: { Check: { Name: 'alive\nforged', TTL: '10s' } },
    api: 'Check.Name: contains a control character (U+000A at offset 5)',
    file: 'check name contains a control character (U+000A at offset 5)',
  },
  {
    name: 'NUL in a check id',
    fields: { Checks: [{ CheckID: 'c\u0000', TTL: '10s' }] },
    api: 'Checks[0].CheckID: contains a control character (U+0000 at offset 1)',
    file: 'check id contains a control character (U+0000 at offset 1)',
  },
  {
    name: 'LF in a sidecar tag',
    fields: { Connect: { SidecarService: { Tags: ['a\nb'] } } },
    api: 'Connect.SidecarService.Tags[0]: tag contains a control character (U+000A',
    file: 'U+000A',
  },
];

/** The same vector as a service definition file (JSON, so any character can be written). */
function asFile(fields: Record<string, unknown>): string {
  return JSON.stringify({ service: { Name: 'web', ...fields } }, null, 2);
}

function apiError(fields: Record<string, unknown>): string {
  try {
    normalizeServiceRegistration({ Name: 'web', ...fields });
  } catch (err) {
    if (isMeshError(err)) return `${err.status} ${err.message}`;
    throw err;
  }
  return 'accepted';
}

describe('registration text rules: control characters and Consul metadata limits', () => {
  describe('the API normalizer (agent and catalog bodies)', () => {
    for (const v of VECTORS) {
      it(`${v.name}: 400 naming the field`, () => {
        const got = apiError(v.fields);
        expect(got.startsWith('400 '), got).to.equal(true);
        expect(got).to.include(v.api);
      });
    }
  });

  describe('service definition files (file:line:column)', () => {
    for (const v of VECTORS) {
      it(`${v.name}: reported with its position, nothing defined`, () => {
        const defs = parseServiceDefinitions(asFile(v.fields), 'web.json');
        expect(defs.services).to.deep.equal([]);
        const lines = defs.errors.map(formatDiagnostic);
        expect(lines.length, lines.join('\n')).to.be.greaterThan(0);
        expect(lines[0]).to.match(/^web\.json:\d+:\d+: service\./);
        expect(lines.join('\n')).to.include(v.file);
        // A message never carries a raw control character.
        for (const l of lines) expect(controlCharProblem(l), l).to.equal(undefined);
      });
    }
  });

  it('HCL files too: a tag with an escaped newline is refused at its line and column', () => {
    const defs = parseServiceDefinitions(
      'service {\n  name = "web"\n  tags = ["ok", "a\\nb"]\n}\n',
      'web.hcl',
    );
    expect(defs.errors.map(formatDiagnostic)).to.deep.equal([
      'web.hcl:3:17: service.tags[1]: tag contains a control character (U+000A at offset 1); control characters are not allowed',
    ]);
  });

  it('agent settings: node_meta follows the same rules', () => {
    const bad: [Record<string, string>, string][] = [
      [{ 'a\u0000': 'v' }, 'meta key contains a control character (U+0000'],
      [{ 'a b': 'v' }, 'meta key may contain only letters'],
      [{ k: 'v\n' }, 'meta value contains a control character (U+000A'],
      [{ k: 'x'.repeat(513) }, 'at most 512 are allowed'],
      [many(65), 'at most 64 pairs are allowed (got 65)'],
    ];
    for (const [meta, message] of bad) {
      const c = parseConfigFile(JSON.stringify({ node_meta: meta }), 'agent.json');
      const lines = c.errors.map(formatDiagnostic);
      expect(lines.join('\n'), JSON.stringify(meta)).to.include(message);
      expect(lines[0]).to.match(/^agent\.json:\d+:\d+: node_meta/);
    }
  });

  it('accepts the values at the limits', () => {
    const edge = {
      Tags: ['a b', 'ünïcode', '"quoted"', 'x'.repeat(300)],
      Meta: {
        ...many(63),
        ['K'.repeat(128)]: 'é'.repeat(256),
      },
      Address: 'web.example',
    };
    expect(apiError(edge)).to.equal('accepted');
    expect(parseServiceDefinitions(asFile(edge), 'web.json').errors).to.deep.equal([]);
    expect(
      Object.keys(normalizeServiceRegistration({ Name: 'w', Meta: many(64) }).Meta!),
    ).to.have.length(64);
    expect(normalizeCheckType({ Name: 'alive: ok (200)', TTL: '5s' }, 'check').Name).to.equal(
      'alive: ok (200)',
    );
  });

  it('the rules themselves', () => {
    const rows: [string, string | undefined][] = [
      ['plain', undefined],
      ['with space', undefined],
      ['a\u0000', 'U+0000 at offset 1'],
      ['\u001f', 'U+001F at offset 0'],
      ['ok\u009f', 'U+009F at offset 2'],
      ['\u2029', 'U+2029 at offset 0'],
    ];
    for (const [s, want] of rows) {
      const got = controlCharProblem(s);
      if (want === undefined) expect(got, JSON.stringify(s)).to.equal(undefined);
      else expect(got, JSON.stringify(s)).to.include(want);
    }
    expect(metaKeyProblem('Good_key-1')).to.equal(undefined);
    expect(metaKeyProblem('k'.repeat(128))).to.equal(undefined);
    expect(metaValueProblem('€'.repeat(170))).to.equal(undefined); // 510 bytes
    expect(metaValueProblem('€'.repeat(171))).to.include('at most 512 are allowed'); // 513 bytes
    expect(metaValueProblem('😀'.repeat(128))).to.equal(undefined); // 512 bytes
    expect(metaValueProblem('😀'.repeat(128) + 'x')).to.include('at most 512 are allowed');
  });
});
