import { expect } from 'chai';
import { formatDiagnostic, parseJson, toPlain } from '../../../src/config/index.js';

function errorsOf(text: string): string[] {
  return parseJson(text, 'bad.json').errors.map(formatDiagnostic);
}

describe('config/json parser', () => {
  it('parses every JSON value kind', () => {
    const text =
      '{"s": "a\\n\\u00e9\\/", "n": -1.5e2, "i": 0, "t": true, "f": false, "z": null, "l": [1, [], {}]}';
    const { root, errors } = parseJson(text, 'x.json');
    expect(errors).to.deep.equal([]);
    expect(toPlain(root!)).to.deep.equal({
      s: 'a\né/',
      n: -150,
      i: 0,
      t: true,
      f: false,
      z: null,
      l: [1, [], {}],
    });
  });

  it('records positions of keys and values', () => {
    const { root } = parseJson(
      '{\n  "service": {\n    "name": "web",\n    "port": 80\n  }\n}\n',
      'x.json',
    );
    if (root?.kind !== 'object') throw new Error('expected an object');
    const service = root.entries[0]!;
    expect(service.keyPos).to.include({ line: 2, column: 3 });
    if (service.value.kind !== 'object') throw new Error('expected an object');
    const port = service.value.entries[1]!;
    expect(port.keyPos).to.include({ line: 4, column: 5 });
    expect(port.value.pos).to.include({ line: 4, column: 13 });
    expect(port.block).to.equal(false);
  });

  it('accepts a byte order mark and surrounding whitespace', () => {
    expect(parseJson('\uFEFF \n {"a": 1} \n', 'x.json').errors).to.deep.equal([]);
  });

  const cases: [string, string, string[]][] = [
    [
      'duplicate key',
      '{\n  "name": "a",\n  "name": "b"\n}',
      ['bad.json:3:3: duplicate key "name" (first defined at 2:3)'],
    ],
    ['trailing garbage', '{"a": 1}\n}', ['bad.json:2:1: unexpected "}" after the JSON value']],
    ['trailing word', '{"a": 1} extra', ['bad.json:1:10: unexpected "extra" after the JSON value']],
    [
      'trailing comma in object',
      '{"a": 1,}',
      ['bad.json:1:9: trailing comma: JSON does not allow "," before "}"'],
    ],
    [
      'trailing comma in array',
      '[1,\n]',
      ['bad.json:2:1: trailing comma: JSON does not allow "," before "]"'],
    ],
    [
      'unterminated string',
      '{"a": "x\n}',
      ['bad.json:1:7: unterminated string: missing closing quote'],
    ],
    ['missing colon', '{"a" 1}', ['bad.json:1:6: expected ":" after key "a", found "1"']],
    [
      'missing comma',
      '{"a": 1 "b": 2}',
      ['bad.json:1:9: expected "," or "}" after the value of "a", found a string'],
    ],
    ['unquoted key', '{a: 1}', ['bad.json:1:2: expected a string key, found "a"']],
    ['bad escape', '{"a": "\\x"}', ['bad.json:1:8: invalid escape "\\\\x" in string']],
    ['leading zero', '{"a": 012}', ['bad.json:1:7: invalid number "012"']],
    ['single quotes', "{'a': 1}", ['bad.json:1:2: expected a string key, found "\'"']],
    ['empty input', '', ['bad.json:1:1: expected a JSON value, found end of file']],
    [
      'unclosed object',
      '{"a": 1',
      ['bad.json:1:8: expected "," or "}" after the value of "a", found end of file'],
    ],
  ];
  for (const [name, text, expected] of cases) {
    it(`reports ${name}`, () => expect(errorsOf(text)).to.deep.equal(expected));
  }

  it('keeps reading after a duplicate key and still reports a later syntax error', () => {
    expect(errorsOf('{"a": 1, "a": 2, "b": }')).to.deep.equal([
      'bad.json:1:10: duplicate key "a" (first defined at 1:2)',
      'bad.json:1:23: expected a JSON value, found "}"',
    ]);
  });
});
