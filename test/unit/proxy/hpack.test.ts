/**
 * The HPACK decoder the HTTP/2 header screen reads header blocks with: the Huffman table
 * against RFC 7541 Appendix B's own structure, the examples of Appendix C, dynamic table
 * eviction and size updates, and malformed input answered with an error, never an exception.
 */
import { expect } from 'chai';
import { HUFFMAN_CODE } from '../../../src/proxy/http/hpack-huffman-code.js';
import { huffmanDecode, huffmanMaxLength } from '../../../src/proxy/http/hpack-huffman.js';
import { HpackDecoder } from '../../../src/proxy/http/hpack.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function huff(s: string): string | undefined {
  const src = hex(s);
  const out = Buffer.alloc(huffmanMaxLength(src.length));
  const n = huffmanDecode(src, out);
  return n < 0 ? undefined : out.subarray(0, n).toString('latin1');
}

/** Decodes a block; the fields as [name, value], or the error. */
function decode(d: HpackDecoder, block: Buffer): [string, string][] | string {
  const fields: [string, string][] = [];
  const err = d.decode(block, (n, v) => fields.push([n.toString('latin1'), v.toString('latin1')]));
  return err ?? fields;
}

describe('proxy/hpack', () => {
  describe('the Huffman code (Appendix B)', () => {
    it('has 257 symbols and is a complete prefix code (Kraft sum exactly 1)', () => {
      expect(HUFFMAN_CODE).to.have.length(257);
      // Sum of 2^(30 - len) over all codes must be 2^30.
      const sum = HUFFMAN_CODE.reduce((s, [, bits]) => s + 2 ** (30 - bits), 0);
      expect(sum).to.equal(2 ** 30);
    });

    it('is canonical: every code follows from the bit lengths alone (the hex column agrees with the length column)', () => {
      const order = HUFFMAN_CODE.map(([, bits], sym) => ({ sym, bits })).sort(
        (a, b) => a.bits - b.bits || a.sym - b.sym,
      );
      let code = 0;
      let prev = order[0]!.bits;
      order.forEach(({ sym, bits }, i) => {
        if (i > 0) code = (code + 1) * 2 ** (bits - prev);
        prev = bits;
        expect(HUFFMAN_CODE[sym]![0], `symbol ${sym}`).to.equal(code);
      });
    });

    it('spot checks against the appendix rows', () => {
      expect(HUFFMAN_CODE[47]).to.deep.equal([0x18, 6]); // '/', the appendix's own example
      expect(HUFFMAN_CODE[48]).to.deep.equal([0x0, 5]); // '0'
      expect(HUFFMAN_CODE[0]).to.deep.equal([0x1ff8, 13]);
      expect(HUFFMAN_CODE[256]).to.deep.equal([0x3fffffff, 30]); // EOS
    });

    it('decodes the strings of Appendix C.4', () => {
      expect(huff('f1e3 c2e5 f23a 6ba0 ab90 f4ff')).to.equal('www.example.com');
      expect(huff('a8eb 1064 9cbf')).to.equal('no-cache');
      expect(huff('25a8 49e9 5ba9 7d7f')).to.equal('custom-key');
      expect(huff('25a8 49e9 5bb8 e8b4 bf')).to.equal('custom-value');
    });

    it('decodes every octet, including the 30-bit codes', () => {
      // Encode all 256 octets with the table, then decode.
      let acc = 0n;
      let bits = 0;
      for (let sym = 0; sym < 256; sym++) {
        const [code, len] = HUFFMAN_CODE[sym]!;
        acc = (acc << BigInt(len)) | BigInt(code);
        bits += len;
      }
      const pad = (8 - (bits % 8)) % 8;
      acc = (acc << BigInt(pad)) | BigInt((1 << pad) - 1);
      const hexStr = acc.toString(16).padStart((bits + pad) / 4, '0');
      const got = huff(hexStr);
      expect(got).to.equal(
        Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('latin1'),
      );
    });

    it('refuses padding that is not all ones, longer than 7 bits, or EOS itself', () => {
      expect(huff('1f')).to.equal('a'); // 00011 + 111
      expect(huff('18')).to.equal(undefined); // 00011 + 000
      expect(huff('1fff')).to.equal(undefined); // 'a' + 11 bits of ones
      expect(huff('ffffffff')).to.equal(undefined); // EOS
      expect(huff('')).to.equal('');
    });
  });

  describe('the decoder', () => {
    it('decodes the requests of Appendix C.3 (no Huffman) with one table', () => {
      const d = new HpackDecoder();
      expect(decode(d, hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d'))).to.deep.equal([
        [':method', 'GET'],
        [':scheme', 'http'],
        [':path', '/'],
        [':authority', 'www.example.com'],
      ]);
      expect(d.tableSize).to.equal(57);
      expect(decode(d, hex('8286 84be 5808 6e6f 2d63 6163 6865'))).to.deep.equal([
        [':method', 'GET'],
        [':scheme', 'http'],
        [':path', '/'],
        [':authority', 'www.example.com'],
        ['cache-control', 'no-cache'],
      ]);
      expect(d.tableSize).to.equal(110);
      expect(
        decode(d, hex('8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65')),
      ).to.deep.equal([
        [':method', 'GET'],
        [':scheme', 'https'],
        [':path', '/index.html'],
        [':authority', 'www.example.com'],
        ['custom-key', 'custom-value'],
      ]);
      expect(d.tableSize).to.equal(164);
      expect(d.tableEntries()).to.deep.equal([
        ['custom-key', 'custom-value'],
        ['cache-control', 'no-cache'],
        [':authority', 'www.example.com'],
      ]);
    });

    it('decodes the requests of Appendix C.4 (Huffman) with one table', () => {
      const d = new HpackDecoder();
      expect(decode(d, hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'))).to.deep.equal([
        [':method', 'GET'],
        [':scheme', 'http'],
        [':path', '/'],
        [':authority', 'www.example.com'],
      ]);
      expect(decode(d, hex('8286 84be 5886 a8eb 1064 9cbf'))).to.have.length(5);
      expect(
        decode(d, hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf')),
      ).to.deep.equal([
        [':method', 'GET'],
        [':scheme', 'https'],
        [':path', '/index.html'],
        [':authority', 'www.example.com'],
        ['custom-key', 'custom-value'],
      ]);
      expect(d.tableSize).to.equal(164);
    });

    it('decodes the field representations of Appendix C.2', () => {
      const d = new HpackDecoder();
      expect(decode(d, hex('040c 2f73 616d 706c 652f 7061 7468'))).to.deep.equal([
        [':path', '/sample/path'],
      ]);
      expect(decode(d, hex('1008 7061 7373 776f 7264 0673 6563 7265 74'))).to.deep.equal([
        ['password', 'secret'],
      ]);
      expect(d.tableSize).to.equal(0); // neither is indexed
    });

    it('reads a multi-octet integer (C.1.2: 1337 on a 5-bit prefix) in a size update', () => {
      const d = new HpackDecoder();
      expect(decode(d, hex('3f9a0a'))).to.deep.equal([]);
      expect(d.maxTableSize).to.equal(1337);
    });

    it('evicts the oldest entries to make room, and an entry larger than the table empties it', () => {
      const d = new HpackDecoder();
      // Size update to 100: room for two 34-octet entries (name 1 + value 1 + 32).
      const lit = (n: string, v: string): string =>
        '40' + '01' + Buffer.from(n).toString('hex') + '01' + Buffer.from(v).toString('hex');
      expect(decode(d, hex('3f45' + lit('a', '1') + lit('b', '2')))).to.have.length(2);
      expect(d.tableEntries()).to.deep.equal([
        ['b', '2'],
        ['a', '1'],
      ]);
      expect(decode(d, hex(lit('c', '3')))).to.have.length(1);
      expect(d.tableEntries()).to.deep.equal([
        ['c', '3'],
        ['b', '2'],
      ]);
      expect(d.tableSize).to.equal(68);
      // Index 62 is the newest (c), 63 the next (b).
      expect(decode(d, hex('bebf'))).to.deep.equal([
        ['c', '3'],
        ['b', '2'],
      ]);
      // A field whose name refers to an entry it evicts keeps that name.
      const big = 'x'.repeat(60);
      expect(
        decode(d, hex('7f00' + '3c' + Buffer.from(big).toString('hex'))), // name index 63 (b)
      ).to.deep.equal([['b', big]]);
      expect(d.tableEntries()).to.deep.equal([['b', big]]);
      // Larger than 100: the table is emptied and the entry not added.
      expect(decode(d, hex(lit('z', 'z').replace(/^4001/, '4001') + ''))).to.have.length(1);
      const huge = '40' + '01' + '7a' + '7f' + '00' + Buffer.from('y'.repeat(127)).toString('hex');
      expect(decode(d, hex(huge))).to.have.length(1);
      expect(d.tableEntries()).to.deep.equal([]);
      expect(d.tableSize).to.equal(0);
    });

    it('a size update to 0 empties the table; one above the limit or after a field is an error', () => {
      const d = new HpackDecoder(4096);
      decode(d, hex('4001610131'));
      expect(d.tableSize).to.equal(34);
      expect(decode(d, hex('20'))).to.deep.equal([]);
      expect(d.tableSize).to.equal(0);
      expect(decode(d, hex('3fe21f'))).to.match(/above the limit/); // 4097
      expect(decode(new HpackDecoder(), hex('82 20'))).to.match(/after a field/);
      // Two updates at the start are allowed (RFC 7541 4.2).
      expect(decode(new HpackDecoder(), hex('20 3fe11f 82'))).to.deep.equal([[':method', 'GET']]);
    });

    const malformed: [string, string][] = [
      ['index 0', '80'],
      ['an index past the dynamic table', 'be'],
      ['an index far past the tables', 'ff ff 7f'],
      ['a name index past the tables', '7f 20 01 61'],
      ['a truncated integer', 'ff'],
      ['an integer too large', '3f ff ff ff ff ff 0f'],
      ['a string longer than the block', '40 0a 61 62'],
      ['a block that ends before the value', '40 01 61'],
      ['a name string with no length octet', '40'],
      ['invalid Huffman (EOS)', '40 84 ff ff ff ff 01 61'],
      ['invalid Huffman padding', '00 81 18 01 61'],
    ];
    for (const [what, bytes] of malformed)
      it(`${what}: an error, not an exception`, () => {
        const r = decode(new HpackDecoder(), hex(bytes));
        expect(r).to.be.a('string');
      });
  });
});
