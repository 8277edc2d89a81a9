/**
 * The access-log writer (a child process, its real stderr): every line is JSON that parses back
 * to the fields given, whatever the strings hold; levels below the logger's are dropped; lines
 * still buffered at exit are written.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MODULE = fileURLToPath(new URL('../../../src/telemetry/access-log.js', import.meta.url));

function run(level: string, script: string): Record<string, unknown>[] {
  const r = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { createAccessLogger } from ${JSON.stringify(MODULE)};
       const log = createAccessLogger(${JSON.stringify(level)});
       ${script}`,
    ],
    { encoding: 'utf8', timeout: 20_000 },
  );
  expect(r.status, r.stderr).to.equal(0);
  return r.stderr
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('telemetry/access log', () => {
  it('writes parseable lines with the fields as given, written at exit', () => {
    const tricky = 'a"b\\c\n\u0000\u2028é/ü';
    const lines = run(
      'info',
      `log.info({ direction: 'inbound', path: ${JSON.stringify(tricky)}, response_code: 200,
                  duration_ms: 1.25, ok: true, nan: NaN, gone: undefined }, 'request');
       for (let i = 0; i < 500; i++) log.info({ i }, 'n');`,
    );
    expect(lines).to.have.length(501);
    expect(lines[0]).to.include({
      level: 30,
      name: 'trellis',
      component: 'access',
      direction: 'inbound',
      path: tricky,
      response_code: 200,
      duration_ms: 1.25,
      ok: true,
      nan: null,
      msg: 'request',
    });
    expect(lines[0]).to.not.have.property('gone');
    expect(lines[0]!.time).to.be.a('number');
    expect(lines[500]).to.include({ i: 499, msg: 'n' });
  });

  it('writes a request record as the same line info() would', () => {
    const r = {
      direction: 'outbound',
      source: 'web',
      destination: 'api',
      protocol: 'HTTP/1.1',
      method: 'GET',
      path: '/a"b\\\\c',
      status: 503,
      flags: 'UF',
      durationMs: 1.23456,
      bytesIn: 3,
      bytesOut: 20,
      upstream: '127.0.0.1:9',
    };
    const [viaRecord, viaInfo] = run(
      'info',
      `const r = ${JSON.stringify(r)};
       log.request(r);
       log.info({ direction: r.direction, source_service: r.source,
         destination_service: r.destination, protocol: r.protocol, method: r.method,
         path: r.path, response_code: r.status, response_flags: r.flags,
         duration_ms: Math.round(r.durationMs * 1000) / 1000, bytes_in: r.bytesIn,
         bytes_out: r.bytesOut, upstream: r.upstream }, 'request');`,
    );
    delete viaRecord!.time;
    delete viaInfo!.time;
    expect(viaRecord).to.deep.equal(viaInfo);
    expect(viaRecord).to.include({ path: r.path, duration_ms: 1.235, msg: 'request' });
  });

  it('drops lines below its level', () => {
    const lines = run('warn', `log.info({ a: 1 }, 'quiet'); log.warn({ b: 2 }, 'loud');`);
    expect(lines.map((l) => l.msg)).to.deep.equal(['loud']);
    expect(lines[0]).to.include({ level: 40, b: 2 });
  });
});
