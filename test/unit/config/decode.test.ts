import { expect } from 'chai';
import {
  decode,
  field,
  formatDiagnostic,
  oneOf,
  parseConfigText,
  schema,
  t,
  type Schema,
} from '../../../src/config/index.js';

/** An ACL-rules-like schema: labeled blocks decode to maps, as later parts of Trellis need. */
const rule = schema([
  field('policy', t.string(oneOf(['read', 'write', 'deny'])), { required: true }),
]);
const aclSchema = schema([
  field('key_prefix', t.mapOf(t.object(rule))),
  field('service', t.mapOf(t.object(rule))),
]);

const settingsSchema = schema(
  [
    field('node_name', t.string(), { out: 'NodeName', required: true }),
    field('http_port', t.int(), { out: 'HTTPPort', aliases: ['port'] }),
    field('enabled', t.bool(), { out: 'Enabled' }),
    field('timeout', t.duration(), { out: 'Timeout' }),
    field('labels', t.mapOfString(), { out: 'Labels' }),
    field('extra', t.opaque(), { out: 'Extra' }),
    field('peer', t.block(schema([field('addr', t.string(), { required: true })])), {
      out: 'Peers',
    }),
  ],
  (v) => {
    if (v.get('enabled') === false && v.has('http_port'))
      v.error('not used when enabled = false', 'http_port');
  },
);

function run(text: string, file: string, s: Schema): { value: unknown; errors: string[] } {
  const parsed = parseConfigText(text, file);
  expect(parsed.errors.map(formatDiagnostic)).to.deep.equal([]);
  const { value, errors } = decode(parsed.root, s, { file });
  return { value, errors: errors.map(formatDiagnostic) };
}

describe('config/decode', () => {
  it('decodes labeled blocks and their JSON form to the same map', () => {
    const hcl =
      'key_prefix "a/" { policy = "read" }\nkey_prefix "" { policy = "deny" }\nservice "web" { policy = "write" }\n';
    const json =
      '{"key_prefix": {"a/": {"policy": "read"}, "": {"policy": "deny"}}, "service": {"web": {"policy": "write"}}}';
    const expected = {
      key_prefix: { 'a/': { policy: 'read' }, '': { policy: 'deny' } },
      service: { web: { policy: 'write' } },
    };
    expect(run(hcl, 'acl.hcl', aclSchema)).to.deep.equal({ value: expected, errors: [] });
    expect(run(json, 'acl.json', aclSchema)).to.deep.equal({ value: expected, errors: [] });
  });

  it('reports problems inside labeled blocks with the label in the path', () => {
    const hcl =
      'key_prefix "a/" { polcy = "read" }\nkey_prefix "b/" { policy = "reed" }\nkey_prefix "a/" { policy = "deny" }\n';
    expect(run(hcl, 'acl.hcl', aclSchema).errors).to.deep.equal([
      'acl.hcl:1:12: key_prefix["a/"].policy: missing required key',
      'acl.hcl:1:19: key_prefix["a/"].polcy: unknown key; did you mean "policy"?',
      'acl.hcl:2:28: key_prefix["b/"].policy: invalid value "reed": must be one of "read", "write", "deny"; did you mean "read"?',
      'acl.hcl:3:12: key_prefix["a/"]: duplicate key (first set at 1:12)',
    ]);
  });

  it('matches keys case-insensitively, ignoring underscores, and by alias', () => {
    const { value, errors } = run('NodeName = "n1"\nPORT = 8500\n', 'a.hcl', settingsSchema);
    expect(errors).to.deep.equal([]);
    expect(value).to.deep.equal({ NodeName: 'n1', HTTPPort: 8500 });
  });

  it('converts weakly typed values as Consul does', () => {
    const { value } = run(
      'node_name = 7\nhttp_port = "8500"\nenabled = "true"\nlabels = { a = 1, b = true }\n',
      'a.hcl',
      settingsSchema,
    );
    expect(value).to.deep.equal({
      NodeName: '7',
      HTTPPort: 8500,
      Enabled: true,
      Labels: { a: '1', b: 'true' },
    });
  });

  it('treats null as not set', () => {
    expect(
      run('{"node_name": "n", "http_port": null}', 'a.json', settingsSchema).value,
    ).to.deep.equal({
      NodeName: 'n',
    });
    expect(run('{"node_name": null}', 'a.json', settingsSchema).errors).to.deep.equal([
      'a.json:1:1: node_name: missing required key',
    ]);
  });

  it('passes opaque values through as plain data', () => {
    const { value } = run(
      'node_name = "n"\nextra { a = [1, {b = "c"}]\n nested "x" { y = true } }\n',
      'a.hcl',
      settingsSchema,
    );
    expect(value).to.deep.equal({
      NodeName: 'n',
      Extra: { a: [1, { b: 'c' }], nested: { x: { y: true } } },
    });
  });

  it('merges repeated labeled blocks in opaque data and rejects keys set twice', () => {
    const merged = run(
      'node_name = "n"\nextra {\n  x "a" { v = 1 }\n  x "b" { v = 2 }\n}\n',
      'a.hcl',
      settingsSchema,
    );
    expect(merged.value).to.deep.equal({
      NodeName: 'n',
      Extra: { x: { a: { v: 1 }, b: { v: 2 } } },
    });
    const twice = run('node_name = "n"\nextra {\n  a = 1\n  a = 2\n}\n', 'a.hcl', settingsSchema);
    expect(twice.errors).to.deep.equal(['a.hcl:4:3: extra.a: duplicate key (first set at 3:3)']);
  });

  it('collects repeated blocks and lists of objects into one array', () => {
    const hcl = 'node_name = "n"\npeer { addr = "a" }\npeer { addr = "b" }\n';
    expect(run(hcl, 'a.hcl', settingsSchema).value).to.deep.equal({
      NodeName: 'n',
      Peers: [{ addr: 'a' }, { addr: 'b' }],
    });
    const json = '{"node_name": "n", "peer": [{"addr": "a"}, {"addr": "b"}]}';
    expect(run(json, 'a.json', settingsSchema).value).to.deep.equal({
      NodeName: 'n',
      Peers: [{ addr: 'a' }, { addr: 'b' }],
    });
  });

  it('reports every problem of a file, in file order', () => {
    const hcl = [
      'http_port = 1.5',
      'enabled = "yes"',
      'timeout = 30',
      'labels = ["a"]',
      'peer { adr = "x" }',
      'node_nam = "n"',
      'http_port = 2',
    ].join('\n');
    expect(run(hcl, 'a.hcl', settingsSchema).errors).to.deep.equal([
      'a.hcl:1:1: node_name: missing required key',
      'a.hcl:1:13: http_port: expected an integer, got number 1.5',
      'a.hcl:2:11: enabled: expected a boolean (true or false), got string "yes"',
      'a.hcl:3:11: timeout: expected a duration string such as "10s", got number 30',
      'a.hcl:4:10: labels: expected an object of key/value pairs, got a list',
      'a.hcl:5:1: peer.addr: missing required key',
      'a.hcl:5:8: peer.adr: unknown key; did you mean "addr"?',
      'a.hcl:6:1: node_nam: unknown key; did you mean "node_name"?',
      'a.hcl:7:1: http_port: duplicate key (first set at 1:1)',
    ]);
  });

  it('runs object-level checks with positions of the keys they name', () => {
    expect(
      run('node_name = "n"\nenabled = false\nhttp_port = 1\n', 'a.hcl', settingsSchema).errors,
    ).to.deep.equal(['a.hcl:3:1: http_port: not used when enabled = false']);
  });

  it('rejects labels on blocks that take none', () => {
    expect(
      run('node_name = "n"\npeer "x" { addr = "a" }\n', 'a.hcl', settingsSchema).errors,
    ).to.deep.equal(['a.hcl:2:6: peer: unexpected label "x": this block takes no label']);
  });

  it('offers no suggestion for a key unlike any known one', () => {
    expect(run('node_name = "n"\nzzz = 1\n', 'a.hcl', settingsSchema).errors).to.deep.equal([
      'a.hcl:2:1: zzz: unknown key',
    ]);
  });

  it('rejects a top-level value that is not an object, and prefixes paths on request', () => {
    const parsed = parseConfigText('[1]', 'a.json');
    expect(
      decode(parsed.root, settingsSchema, { file: 'a.json' }).errors.map(formatDiagnostic),
    ).to.deep.equal(['a.json:1:1: expected an object at the top level, got a list']);
    const nested = parseConfigText('{"http_port": "x"}', 'a.json');
    const r = decode(nested.root, settingsSchema, { file: 'a.json', path: 'agent' });
    expect(r.errors.map(formatDiagnostic)).to.deep.equal([
      'a.json:1:1: agent.node_name: missing required key',
      'a.json:1:15: agent.http_port: expected an integer, got string "x"',
    ]);
  });

  it('remembers where each decoded object was written', () => {
    const parsed = parseConfigText('node_name = "n"\n\npeer {\n  addr = "a"\n}\n', 'a.hcl');
    const r = decode<{ Peers: object[] }>(parsed.root, settingsSchema, { file: 'a.hcl' });
    expect(r.positions.get(r.value.Peers[0]!)).to.include({ line: 3, column: 1 });
  });
});
