/**
 * The table-free HPACK encoder the proxy's HTTP/2 connections write header blocks with, read
 * back through our HPACK decoder: static table matches, indexed names, new names, lengths that
 * need multi-octet integers, empty values, latin1 octets, and a seeded random round trip. Each
 * block must also leave the decoder's dynamic table empty (the encoder never indexes).
 */
import { expect } from 'chai';
import { encodeHeaderBlock } from '../../../src/proxy/http/hpack-encoder.js';
import { HpackDecoder, STATIC_TABLE } from '../../../src/proxy/http/hpack.js';
import { rng } from '../../helpers/rng.js';

/** Decodes `block` with a fresh decoder; the fields flat (name, value, ...) or the error. */
function roundTrip(fields: readonly string[]): string[] {
  const block = encodeHeaderBlock(fields);
  const d = new HpackDecoder();
  const out: string[] = [];
  const err = d.decode(block, (n, v) => out.push(n.toString('latin1'), v.toString('latin1')));
  expect(err, 'decode error').to.equal(undefined);
  expect(d.tableSize, 'dynamic table used').to.equal(0);
  return out;
}

describe('proxy/hpack encoder', () => {
  it('encodes a static name and value match as one indexed octet', () => {
    const cases: [string, string, number][] = [
      [':method', 'GET', 2],
      [':method', 'POST', 3],
      [':path', '/', 4],
      [':path', '/index.html', 5],
      [':scheme', 'http', 6],
      [':scheme', 'https', 7],
      [':status', '200', 8],
      [':status', '500', 14],
      ['accept-encoding', 'gzip, deflate', 16],
    ];
    for (const [n, v, index] of cases) {
      const block = encodeHeaderBlock([n, v]);
      expect([...block], `${n}: ${v}`).to.deep.equal([0x80 | index]);
      expect(roundTrip([n, v])).to.deep.equal([n, v]);
    }
  });

  it('indexes the name only for static names with other values, in the 4-bit prefix form', () => {
    // content-type is entry 31: 0000 1111 then 31 - 15 = 16.
    const block = encodeHeaderBlock(['content-type', 'text/plain']);
    expect([...block.subarray(0, 3)]).to.deep.equal([0x0f, 16, 10]);
    expect(block.subarray(3).toString('latin1')).to.equal('text/plain');
    // :authority (entry 1) has an empty static value: a real value is a literal.
    expect([...encodeHeaderBlock([':authority', 'svc'])]).to.deep.equal([
      0x01,
      3,
      ...Buffer.from('svc'),
    ]);
    // :status 201 is not in the table, :status is (entry 8).
    expect([...encodeHeaderBlock([':status', '201'])]).to.deep.equal([
      0x08,
      3,
      ...Buffer.from('201'),
    ]);
    for (const [n] of STATIC_TABLE)
      expect(roundTrip([n, 'another value'])).to.deep.equal([n, 'another value']);
  });

  it('writes new names as literals without indexing', () => {
    const block = encodeHeaderBlock(['x-trellis', 'yes']);
    expect([...block]).to.deep.equal([
      0x00,
      9,
      ...Buffer.from('x-trellis'),
      3,
      ...Buffer.from('yes'),
    ]);
    expect(roundTrip(['x-trellis', 'yes', 'x-other', 'no'])).to.deep.equal([
      'x-trellis',
      'yes',
      'x-other',
      'no',
    ]);
  });

  it('round trips empty values, with static and new names', () => {
    const fields = [':authority', '', 'accept', '', 'x-empty', '', 'accept-encoding', ''];
    expect(roundTrip(fields)).to.deep.equal(fields);
    expect(roundTrip([])).to.deep.equal([]);
  });

  it('uses multi-octet integers for long values and names (126, 127, 254, 16383, 16510, 70000 octets)', () => {
    for (const len of [126, 127, 128, 254, 255, 16_383, 16_510, 16_511, 70_000]) {
      const v = 'v'.repeat(len);
      const name = 'x-'.padEnd(len, 'n');
      expect(roundTrip(['x-long', v]), `value ${len}`).to.deep.equal(['x-long', v]);
      expect(roundTrip(['user-agent', v]), `indexed name, value ${len}`).to.deep.equal([
        'user-agent',
        v,
      ]);
      expect(roundTrip([name, 'x']), `name ${len}`).to.deep.equal([name, 'x']);
    }
    // 127 octets: the 7-bit prefix is full (127) and a zero continuation octet follows.
    const b = encodeHeaderBlock(['x', 'a'.repeat(127)]);
    expect([...b.subarray(0, 5)]).to.deep.equal([0x00, 1, 0x78, 0x7f, 0x00]);
    // 16383 + 127 = 16510: two continuation octets.
    const c = encodeHeaderBlock(['x', 'a'.repeat(16_510)]);
    expect([...c.subarray(3, 6)]).to.deep.equal([0x7f, 0xff, 0x7f]);
    expect(c.length).to.equal(3 + 3 + 16_510);
  });

  it('writes values as octets: latin1 0x80-0xff survive', () => {
    let all = '';
    for (let c = 0x80; c <= 0xff; c++) all += String.fromCharCode(c);
    const fields = ['x-latin1', all, 'cookie', 'caf\u00e9=\u00ff'];
    expect(roundTrip(fields)).to.deep.equal(fields);
    const block = encodeHeaderBlock(['x', '\u00e9']);
    expect(block[block.length - 1]).to.equal(0xe9);
  });

  it('round trips 1,000 random field lists (seeded)', () => {
    const next = rng(0x5eed);
    const staticNames = STATIC_TABLE.map(([n]) => n);
    const staticPairs = STATIC_TABLE.filter(([, v]) => v !== '');
    const randomString = (max: number): string => {
      const len = next() % (max + 1);
      let s = '';
      for (let i = 0; i < len; i++) s += String.fromCharCode(next() & 0xff);
      return s;
    };
    for (let i = 0; i < 1_000; i++) {
      const fields: string[] = [];
      const count = next() % 20;
      for (let f = 0; f < count; f++) {
        const kind = next() % 5;
        if (kind === 0) {
          const [n, v] = staticPairs[next() % staticPairs.length]!;
          fields.push(n, v);
        } else if (kind === 1)
          fields.push(staticNames[next() % staticNames.length]!, randomString(40));
        else if (kind === 2) fields.push(`x-${randomString(12)}`, randomString(40));
        else if (kind === 3)
          fields.push(randomString(30), randomString(next() % 8 === 0 ? 20_000 : 300));
        else fields.push(randomString(3), '');
      }
      expect(roundTrip(fields), `list ${i}`).to.deep.equal(fields);
    }
  });
});
