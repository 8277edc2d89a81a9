import { expect } from 'chai';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ConfigError,
  formatDiagnostic,
  loadConfigDir,
  loadConfigFile,
  throwIfErrors,
  type ConfigDiagnostic,
} from '../../../src/config/index.js';

// Tests run from dist/test/unit/config; fixtures stay in the source tree.
const FIXTURES = fileURLToPath(new URL('../../../../test/fixtures/config/', import.meta.url));

function relative(errors: ConfigDiagnostic[]): string[] {
  return errors.map((e) => formatDiagnostic(e).split(FIXTURES).join(''));
}

describe('config/load', () => {
  it('loads one file', async () => {
    const r = await loadConfigFile(join(FIXTURES, 'services/10-web.hcl'));
    expect(r.errors).to.deep.equal([]);
    expect(r.services.map((s) => s.ID)).to.deep.equal(['web-1']);
    expect(r.services[0]!.Connect?.SidecarService?.Proxy?.Upstreams).to.deep.equal([
      { DestinationName: 'api', LocalBindPort: 9191 },
    ]);
  });

  it('loads the *.hcl and *.json files of a directory in name order, not subdirectories', async () => {
    const r = await loadConfigDir(join(FIXTURES, 'services'));
    expect(r.errors).to.deep.equal([]);
    expect(r.services.map((s) => s.Name)).to.deep.equal(['web', 'api']);
    expect(r.services[1]!.Checks).to.deep.equal([
      { CheckID: 'api-grpc', GRPC: '127.0.0.1:9090', Interval: '5s' },
      { CheckID: 'api-ttl', TTL: '30s' },
    ]);
    expect(r.checks).to.deep.equal([
      {
        ID: 'disk',
        Name: 'Disk space',
        ScriptArgs: ['/usr/local/bin/check_disk', '-w', '90'],
        Interval: '1m',
      },
    ]);
  });

  it('reports the errors of every file and keeps only the clean files', async () => {
    const r = await loadConfigDir(join(FIXTURES, 'broken'));
    expect(relative(r.errors)).to.deep.equal([
      'broken/b-errors.hcl:3:3: service.prot: unknown key; did you mean "port"?',
      'broken/b-errors.hcl:4:3: service.check.interval: missing required key (every check except a ttl check needs one)',
      'broken/c-dup.json:1:2: service: duplicate service id "db" (first defined at broken/a-ok.hcl:1:1)',
      'broken/d-syntax.json:1:30: trailing comma: JSON does not allow "," before "}"',
    ]);
    expect(r.services).to.deep.equal([{ Name: 'db', Port: 5432 }]);
  });

  it('reports unreadable files and directories without throwing', async () => {
    const file = await loadConfigFile(join(FIXTURES, 'nope.hcl'));
    expect(relative(file.errors)).to.have.lengthOf(1);
    expect(relative(file.errors)[0]).to.match(/^nope\.hcl: cannot read: ENOENT/);
    const dir = await loadConfigDir(join(FIXTURES, 'no-such-dir'));
    expect(relative(dir.errors)[0]).to.match(/^no-such-dir: cannot read: ENOENT/);
  });

  it('turns diagnostics into one user error for callers that stop on errors', async () => {
    const r = await loadConfigDir(join(FIXTURES, 'broken'));
    expect(() => throwIfErrors([])).not.to.throw();
    try {
      throwIfErrors(r.errors);
      expect.fail('should have thrown');
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigError);
      const e = err as ConfigError;
      expect(e.code).to.equal('MESH_ERR_CONFIG');
      expect(e.kind).to.equal('user');
      expect(e.diagnostics).to.have.lengthOf(4);
      expect(e.message.split('\n')[0]).to.equal('4 configuration errors:');
    }
  });
});
