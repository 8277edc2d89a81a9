import { expect } from 'chai';
import { ScriptCheck } from '../../../src/agent/checks/index.js';
import { isAlive, waitFor } from './helpers.js';

const sh = (script: string): { ScriptArgs: string[] } => ({
  ScriptArgs: ['/bin/sh', '-c', script],
});

describe('checks/script (real processes)', function () {
  this.timeout(20_000);

  it('exit 0 is passing, 1 warning, 2 critical', async () => {
    expect(await new ScriptCheck(sh('exit 0')).run(5000)).to.deep.equal({
      status: 'passing',
      output: '',
    });
    expect(await new ScriptCheck(sh('echo degraded; exit 1')).run(5000)).to.deep.equal({
      status: 'warning',
      output: 'degraded\n',
    });
    expect((await new ScriptCheck(sh('exit 2')).run(5000)).status).to.equal('critical');
  });

  it('captures stdout and stderr together, keeping the last OutputMaxSize bytes', async () => {
    const both = await new ScriptCheck(sh('echo out; echo err >&2')).run(5000);
    expect(both.output).to.equal('out\nerr\n');
    const long = await new ScriptCheck({
      ...sh('printf "%0100d" 0; echo tail'),
      OutputMaxSize: 8,
    }).run(5000);
    expect(long.output).to.equal('Captured 8 of 105 bytes\n...\n000tail\n');
  });

  it('runs argv without a shell', async () => {
    const r = await new ScriptCheck({ ScriptArgs: ['/bin/echo', '$HOME', '; exit 2'] }).run(5000);
    expect(r).to.deep.equal({ status: 'passing', output: '$HOME ; exit 2\n' });
  });

  it('a missing program is critical', async () => {
    const r = await new ScriptCheck({ ScriptArgs: ['/nonexistent/check'] }).run(5000);
    expect(r.status).to.equal('critical');
    expect(r.output).to.match(/ENOENT/);
  });

  it('kills the whole process group on timeout', async () => {
    // the shell starts a background sleeper, prints its pid, then waits for it
    const r = await new ScriptCheck(sh('sleep 30 & echo $!; wait')).run(500);
    expect(r.status).to.equal('critical');
    expect(r.output.startsWith('Script check timed out after 500ms\n')).to.equal(true);
    const pid = Number(r.output.split('\n')[1]);
    expect(pid).to.be.greaterThan(0);
    await waitFor(() => !isAlive(pid), 5000, 'the sleeper to die');
  });
});
