import { expect } from 'chai';
import { ResponseCache } from '../../../src/catalog/http/response-cache.js';
import type { QueryResult } from '../../../src/catalog/state/queries.js';

const result = (v: number): QueryResult<number> => ({ index: v, value: v, watch: { keys: [] } });

describe('catalog response cache', () => {
  it('runs a query once per state index and key', () => {
    const c = new ResponseCache();
    let runs = 0;
    const run = (): QueryResult<number> => result(++runs);
    const a = c.result('/v1/health/service/web', 7, run);
    expect(c.result('/v1/health/service/web', 7, run)).to.equal(a);
    expect(runs).to.equal(1);
    c.result('/v1/health/service/web?filter=x', 7, run);
    expect(runs, 'another key runs its own query').to.equal(2);
    c.result('/v1/health/service/web', 8, run);
    expect(runs, 'a write (new state index) makes the entry stale').to.equal(3);
  });

  it('hands out a body only for the exact result it was made from', () => {
    const c = new ResponseCache();
    const r = c.result('k', 1, () => result(1));
    c.setBody('k', r, { status: 200, body: Buffer.from('1') });
    expect(c.body('k', r)?.body?.toString()).to.equal('1');
    const r2 = c.result('k', 2, () => result(2));
    expect(c.body('k', r2)).to.equal(undefined);
    expect(c.body('k', r)).to.equal(undefined);
  });

  it('stays bounded', () => {
    const c = new ResponseCache(3);
    let runs = 0;
    for (const k of ['a', 'b', 'c', 'd']) c.result(k, 1, () => result(++runs));
    c.result('a', 1, () => result(++runs));
    expect(runs, 'the oldest key was evicted').to.equal(5);
  });
});
