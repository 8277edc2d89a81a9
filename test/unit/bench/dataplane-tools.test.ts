/**
 * The data-plane benchmark reads wrk's and h2load's text reports: these are real reports from
 * Debian's wrk 4.1.0 and h2load 1.52.0 (captured on loopback against nginx and against a server
 * answering 503), so a change of format or a parsing slip shows here, not as a wrong table.
 */
import { expect } from 'chai';
import { parseH2load, parseWrk, wrkTime } from '../../../bench/dataplane/tools.js';

const WRK_LATENCY = `Running 1s test @ http://127.0.0.1:18080/
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   108.62us  227.29us   4.17ms   97.94%
    Req/Sec    22.35k     2.06k   25.42k    72.73%
  Latency Distribution
     50%   83.00us
     75%   96.00us
     90%  105.00us
     99%    1.00ms
  24454 requests in 1.10s, 29.29MB read
Requests/sec:  22196.59
Transfer/sec:     26.59MB
`;

const WRK_PLAIN = `Running 1s test @ http://127.0.0.1:18080/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   242.38us  822.56us  10.36ms   95.97%
    Req/Sec    38.91k    18.56k   70.73k    81.82%
  42480 requests in 1.10s, 50.88MB read
Requests/sec:  38631.18
Transfer/sec:     46.27MB
`;

const WRK_ERRORS = `Running 1s test @ http://127.0.0.1:18090/
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   193.65us  176.01us   2.67ms   94.90%
    Req/Sec     6.12k     1.04k    7.48k    70.00%
  6081 requests in 1.00s, 326.62KB read
  Socket errors: connect 0, read 6081, write 0, timeout 0
  Non-2xx or 3xx responses: 6081
Requests/sec:   6077.86
Transfer/sec:    326.45KB
`;

const H2LOAD_OK = `starting benchmark...
Application protocol: h2c
finished in 1.00s, 36659.00 req/s, 39.93MB/s
requests: 36659 total, 36667 started, 36659 done, 36659 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 36659 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 39.93MB (41864774) total, 3.50MB (3665900) headers (space savings 42.86%), 35.80MB (37538816) data
`;

const H2LOAD_5XX = `finished in 2.00s, 1000.00 req/s, 10KB/s
requests: 2000 total, 2000 started, 2000 done, 1500 succeeded, 500 failed, 0 errored, 0 timeout
status codes: 1500 2xx, 0 3xx, 0 4xx, 500 5xx
`;

describe('bench dataplane: wrk and h2load reports', () => {
  it('reads wrk durations in every unit it prints', () => {
    expect(wrkTime('83.00us')).to.be.closeTo(0.083, 1e-9);
    expect(wrkTime('1.00ms')).to.equal(1);
    expect(wrkTime('2.50s')).to.equal(2500);
    expect(wrkTime('1.00m')).to.equal(60_000);
    expect(wrkTime('fast')).to.be.NaN;
  });

  it('reads wrk --latency: rate, requests, percentiles and max, no errors', () => {
    const r = parseWrk(WRK_LATENCY);
    expect(r.rate).to.be.closeTo(22196.59, 1e-6);
    expect(r.requests).to.equal(24454);
    expect(r.errors).to.equal(0);
    expect(r.latency).to.deep.equal({ p50: 0.083, p90: 0.105, p99: 1, max: 4.17 });
  });

  it('gives no percentiles when wrk ran without --latency', () => {
    const r = parseWrk(WRK_PLAIN);
    expect(r.latency).to.equal(undefined);
    expect(r.requests).to.equal(42480);
  });

  it('counts wrk socket errors and non-2xx answers, and no successful rate for them', () => {
    const r = parseWrk(WRK_ERRORS);
    expect(r.errors).to.equal(6081 + 6081);
    expect(r.rate).to.equal(0);
    expect(r.errorNotes).to.have.length(2);
  });

  it('refuses a wrk output without its summary', () => {
    expect(() => parseWrk('unable to connect to 127.0.0.1:1 Connection refused')).to.throw(
      /Requests\/sec/,
    );
  });

  it('reads h2load: rate and no errors', () => {
    const r = parseH2load(H2LOAD_OK);
    expect(r.rate).to.be.closeTo(36659, 1e-6);
    expect(r.requests).to.equal(36659);
    expect(r.errors).to.equal(0);
    expect(r.errorNotes).to.deep.equal([]);
  });

  it('counts h2load non-2xx answers as errors and takes them out of the rate', () => {
    const r = parseH2load(H2LOAD_5XX);
    // h2load counts a 5xx answer as "failed": one error each, and not in the successful rate.
    expect(r.requests).to.equal(2000);
    expect(r.rate).to.be.closeTo(750, 1e-6);
    expect(r.errors).to.equal(500);
    expect(r.errorNotes).to.have.length(2);
  });

  it('refuses an h2load output without its summary', () => {
    expect(() => parseH2load('connect failed')).to.throw(/finished in/);
  });
});
