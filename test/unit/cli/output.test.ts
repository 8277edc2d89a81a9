import { expect } from 'chai';
import { formatJson, formatJsonLine, formatTable } from '../../../src/cli/index.js';

describe('CLI output formatting', () => {
  it('formatTable() aligns columns and does not pad the last one', () => {
    expect(
      formatTable(
        ['Name', 'Port', 'Tags'],
        [
          ['web', '80', 'a,b'],
          ['database', '5432', ''],
        ],
      ),
    ).to.equal('Name      Port  Tags\nweb       80    a,b\ndatabase  5432\n');
  });

  it('formatTable() keeps each row on one line', () => {
    expect(formatTable(['A', 'B'], [['x\ny', 'tab\there']])).to.equal('A    B\nx y  tab here\n');
  });

  it('formatTable() prints only the headers for no rows', () => {
    expect(formatTable(['Node', 'Address'], [])).to.equal('Node  Address\n');
  });

  it('formatJson() is indented; formatJsonLine() is one line', () => {
    expect(formatJson({ a: [1] })).to.equal('{\n  "a": [\n    1\n  ]\n}\n');
    expect(formatJsonLine({ a: [1] })).to.equal('{"a":[1]}\n');
  });
});
