import { expect } from 'chai';
import {
  formatDiagnostic,
  parseHcl,
  toPlain,
  type ObjectNode,
  type ValueNode,
} from '../../../src/config/index.js';

function plain(text: string): unknown {
  const { root, errors } = parseHcl(text, 'test.hcl');
  expect(errors.map(formatDiagnostic)).to.deep.equal([]);
  return toPlain(root);
}

function errorsOf(text: string): string[] {
  return parseHcl(text, 'bad.hcl').errors.map(formatDiagnostic);
}

function entry(node: ValueNode, key: string): ObjectNode['entries'][number] {
  if (node.kind !== 'object') throw new Error(`not an object: ${node.kind}`);
  const found = node.entries.find((e) => e.key === key);
  if (!found) throw new Error(`no key ${key}`);
  return found;
}

describe('config/hcl parser', () => {
  it('parses the service definition example', () => {
    const text = [
      'service {',
      '  name = "web"',
      '  port = 8080',
      '  tags = ["v1", "primary"]',
      '  meta = { version = "1" }',
      '  check {',
      '    http     = "http://127.0.0.1:8080/health"',
      '    interval = "10s"',
      '  }',
      '}',
    ].join('\n');
    expect(plain(text)).to.deep.equal({
      service: {
        name: 'web',
        port: 8080,
        tags: ['v1', 'primary'],
        meta: { version: '1' },
        check: { http: 'http://127.0.0.1:8080/health', interval: '10s' },
      },
    });
  });

  it('records 1-based positions of keys and values', () => {
    const { root } = parseHcl('service {\n  name = "web"\n  port = 8080\n}\n', 'x.hcl');
    const service = entry(root, 'service');
    expect(service.keyPos).to.include({ line: 1, column: 1 });
    expect(service.block).to.equal(true);
    const port = entry(service.value, 'port');
    expect(port.keyPos).to.include({ line: 3, column: 3 });
    expect(port.value.pos).to.include({ line: 3, column: 10 });
  });

  it('parses block labels with their positions', () => {
    const { root, errors } = parseHcl(
      'key_prefix "a/" { policy = "read" }\nnode foo "b" {}\n',
      'acl.hcl',
    );
    expect(errors).to.deep.equal([]);
    const kp = entry(root, 'key_prefix');
    expect(kp.labels).to.deep.equal([{ value: 'a/', pos: { line: 1, column: 12, offset: 11 } }]);
    expect(entry(root, 'node').labels.map((l) => l.value)).to.deep.equal(['foo', 'b']);
    expect(toPlain(root)).to.deep.equal({
      key_prefix: { 'a/': { policy: 'read' } },
      node: { foo: { b: {} } },
    });
  });

  it('keeps repeated blocks as separate entries', () => {
    const { root } = parseHcl('service { name = "a" }\nservice { name = "b" }\n', 'x.hcl');
    expect(root.entries.map((e) => e.key)).to.deep.equal(['service', 'service']);
  });

  it('accepts "=" and ":" separators, commas, newlines and trailing commas', () => {
    expect(plain('o = { a = 1, b: 2,\n c = [1, 2,],\n "d e" = true }\n')).to.deep.equal({
      o: { a: 1, b: 2, c: [1, 2], 'd e': true },
    });
    expect(plain('a: "x"\nb = []\nc = {}')).to.deep.equal({ a: 'x', b: [], c: {} });
  });

  it('parses numbers, bools and null', () => {
    expect(
      plain('a = 1\nb = -2.5\nc = 1e3\nd = 0x1F\ne = true\nf = false\ng = null\n'),
    ).to.deep.equal({
      a: 1,
      b: -2.5,
      c: 1000,
      d: 31,
      e: true,
      f: false,
      g: null,
    });
  });

  it('decodes string escapes and keeps ${ as literal text', () => {
    expect(plain(String.raw`s = "a\nb\t\"q\" \\ \u00e9 \U0001F600 ` + '${x}"')).to.deep.equal({
      s: 'a\nb\t"q" \\ é 😀 ${x}',
    });
  });

  it('skips #, // and /* */ comments', () => {
    const text = '# top\na = 1 // trailing\n/* block\n   comment */ b = 2\nc = "# not a comment"\n';
    expect(plain(text)).to.deep.equal({ a: 1, b: 2, c: '# not a comment' });
  });

  it('reads heredocs, with <<- stripping common indentation', () => {
    const text = 'a = <<EOF\nline 1\n  line 2\nEOF\nb = <<-END\n    x\n      y\n    END\nc = 1\n';
    expect(plain(text)).to.deep.equal({ a: 'line 1\n  line 2\n', b: 'x\n  y\n', c: 1 });
  });

  it('accepts CRLF line endings and a byte order mark', () => {
    expect(plain('\uFEFFa = 1\r\nb = "x"\r\n')).to.deep.equal({ a: 1, b: 'x' });
  });

  it('parses an empty file and a file of comments', () => {
    expect(plain('')).to.deep.equal({});
    expect(plain('# nothing\n// here\n')).to.deep.equal({});
  });

  describe('syntax errors', () => {
    const cases: [string, string, string[]][] = [
      [
        'unterminated string',
        'service {\n  name = "web\n  port = 80\n}\n',
        ['bad.hcl:2:10: unterminated string: missing closing quote'],
      ],
      [
        'missing closing brace',
        'service {\n  name = "web"\n',
        ['bad.hcl:3:1: expected "}" to close the block opened at 1:9, found end of file'],
      ],
      ['missing value', 'a =\nb = 1\n', ['bad.hcl:1:3: expected a value after "=" for key "a"']],
      [
        'two values',
        'port = 80 80\n',
        ['bad.hcl:1:11: expected a line break or "," before number 80'],
      ],
      [
        'missing list comma',
        'tags = ["a" "b"]\n',
        ['bad.hcl:1:13: expected "," or "]" in list, found string "b"'],
      ],
      [
        'unclosed list',
        'tags = ["a",\n',
        ['bad.hcl:2:1: expected "]" to close the list opened at 1:8, found end of file'],
      ],
      [
        'bare word',
        'name = web\n',
        ['bad.hcl:1:8: unquoted word web: strings must be in double quotes'],
      ],
      [
        'missing =',
        'name "web"\n',
        ['bad.hcl:1:6: expected "=" or "{" after key "name", found string "web"'],
      ],
      [
        'unit on a number',
        'interval = 10s\n',
        ['bad.hcl:1:12: invalid number 10s; quote it if it is a duration: "10s"'],
      ],
      [
        'stray closing brace',
        '}\na = 1\n',
        ['bad.hcl:1:1: unexpected "}": there is no open block to close'],
      ],
      ['bad escape', 'a = "x\\qy"\n', ['bad.hcl:1:7: invalid escape "\\\\q" in string']],
      ['bad character', 'a = 1\n@\n', ['bad.hcl:2:1: unexpected character "@"']],
      [
        'unterminated comment',
        'a = 1\n/* no end\n',
        ['bad.hcl:2:1: unterminated comment: "/*" is never closed by "*/"'],
      ],
      [
        'unterminated heredoc',
        'a = <<EOF\ntext\n',
        ['bad.hcl:1:5: unterminated heredoc: no line with just EOF closes it'],
      ],
    ];
    for (const [name, text, expected] of cases) {
      it(name, () => expect(errorsOf(text)).to.deep.equal(expected));
    }

    it('reports independent errors on several lines in one run', () => {
      const text = [
        'service {',
        '  name = web',
        '  port = 80 80',
        '  tags = ["a" "b"]',
        '  meta = { a = "x }',
        '  address = "127.0.0.1"',
        '}',
      ].join('\n');
      expect(errorsOf(text)).to.deep.equal([
        'bad.hcl:2:10: unquoted word web: strings must be in double quotes',
        'bad.hcl:3:13: expected a line break or "," before number 80',
        'bad.hcl:4:15: expected "," or "]" in list, found string "b"',
        'bad.hcl:5:16: unterminated string: missing closing quote',
      ]);
    });

    it('still returns the entries it could read', () => {
      const { root, errors } = parseHcl('a = 1\nb = oops\nc = 3\n', 'x.hcl');
      expect(errors).to.have.lengthOf(1);
      expect(toPlain(root)).to.deep.equal({ a: 1, c: 3 });
    });

    it('carries file, line, column and message in each error', () => {
      expect(parseHcl('a = "x', 'dir/f.hcl').errors).to.deep.equal([
        {
          file: 'dir/f.hcl',
          line: 1,
          column: 5,
          key: '',
          message: 'unterminated string: missing closing quote',
        },
      ]);
    });
  });
});
