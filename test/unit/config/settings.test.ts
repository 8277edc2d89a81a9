import { expect } from 'chai';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  formatDiagnostic,
  decodeConfigFileAt,
  loadConfigDir,
  mergeSettings,
  parseConfigFile,
  parseConfigText,
  parseServiceDefinitions,
  type ConfigDiagnostic,
} from '../../../src/config/index.js';

// Tests run from dist/test/unit/config; fixtures stay in the source tree.
const FIXTURES = fileURLToPath(new URL('../../../../test/fixtures/config/', import.meta.url));

function relative(errors: ConfigDiagnostic[]): string[] {
  return errors.map((e) => formatDiagnostic(e).split(FIXTURES).join(''));
}

function errorsOf(text: string, file = 'a.hcl'): string[] {
  return parseConfigFile(text, file).errors.map(formatDiagnostic);
}

describe('config/agent settings', () => {
  it('decodes every setting, with durations in ms', () => {
    const r = parseConfigFile(
      [
        'node_name = "web-1"',
        'datacenter = "east"',
        'data_dir = "/var/lib/trellis"',
        'advertise_addr = "10.0.1.21"',
        'http_addr = "127.0.0.1:8500"',
        'retry_join = ["10.0.0.5:8500", "server-2"]',
        'enable_script_checks = true',
        'node_meta { rack = "r1", "a-b" = "c" }',
        'log_level = "warn"',
        'heartbeat_interval = "1.5s"',
        'heartbeat_ttl = "1m"',
        'sync_interval = "500ms"',
        'bind_addr = "[::]:8500"',
        'snapshot_every = 100',
        'service { name = "web" }',
      ].join('\n'),
      'agent.hcl',
    );
    expect(r.errors.map(formatDiagnostic)).to.deep.equal([]);
    expect(r.services).to.deep.equal([{ Name: 'web' }]);
    expect(r.settings).to.deep.equal({
      nodeName: 'web-1',
      datacenter: 'east',
      dataDir: '/var/lib/trellis',
      advertiseAddr: '10.0.1.21',
      httpAddr: '127.0.0.1:8500',
      retryJoin: ['10.0.0.5:8500', 'server-2'],
      enableScriptChecks: true,
      nodeMeta: { rack: 'r1', 'a-b': 'c' },
      logLevel: 'warn',
      heartbeatIntervalMs: 1500,
      heartbeatTtlMs: 60_000,
      syncIntervalMs: 500,
      bindAddr: '[::]:8500',
      snapshotEvery: 100,
    });
  });

  it('reads the same keys from JSON, in any spelling Consul accepts, and servers for retry_join', () => {
    const r = parseConfigFile(
      JSON.stringify({ NodeName: 'n1', servers: ['10.0.0.5:8500'], LogLevel: 'error' }),
      'agent.json',
    );
    expect(r.errors).to.deep.equal([]);
    expect(r.settings).to.deep.equal({
      nodeName: 'n1',
      retryJoin: ['10.0.0.5:8500'],
      logLevel: 'error',
    });
  });

  it("builds http_addr from Consul's addresses and ports blocks", () => {
    expect(parseConfigFile('ports { http = 8501 }', 'a.hcl').settings).to.deep.equal({
      httpAddr: '127.0.0.1:8501',
    });
    expect(
      parseConfigFile('addresses { http = "0.0.0.0" }\nports { http = 0 }', 'a.hcl').settings,
    ).to.deep.equal({ httpAddr: '0.0.0.0:0' });
    expect(errorsOf('http_addr = "127.0.0.1:8500"\nports { http = 8501 }')).to.deep.equal([
      'a.hcl:2:9: ports.http: conflicts with http_addr set at a.hcl:1:1: use one or the other',
    ]);
  });

  it('reports unknown keys with a hint, among service keys too', () => {
    expect(
      errorsOf('node_nme = "web-1"\nretry_jion = ["a:1"]\nservice { name = "web" }'),
    ).to.deep.equal([
      'a.hcl:1:1: node_nme: unknown key; did you mean "node_name"?',
      'a.hcl:2:1: retry_jion: unknown key; did you mean "retry_join"?',
    ]);
    expect(errorsOf('servce { name = "web" }')).to.deep.equal([
      'a.hcl:1:1: servce: unknown key; did you mean "service"?',
    ]);
  });

  it('reports bad values at the value', () => {
    expect(
      errorsOf(
        [
          'heartbeat_interval = "2 seconds"',
          'heartbeat_ttl = "0s"',
          'sync_interval = 60',
          'log_level = "warning"',
          'node_name = "web 1"',
          'retry_join = ["10.0.0.5:99999", "http://x"]',
          'http_addr = "localhost:port"',
          'advertise_addr = "10.0.0.1:8500"',
          'snapshot_every = 0',
          'enable_script_checks = "yes"',
        ].join('\n'),
      ),
    ).to.deep.equal([
      'a.hcl:1:22: heartbeat_interval: invalid duration "2 seconds": use Go syntax such as "10s", "1m30s" or "500ms"',
      'a.hcl:2:17: heartbeat_ttl: must be longer than 0s',
      'a.hcl:3:17: sync_interval: expected a duration string such as "10s", got number 60',
      'a.hcl:4:13: log_level: invalid value "warning": must be one of "debug", "info", "warn", "error"',
      'a.hcl:5:13: node_name: invalid node name "web 1": use letters, digits, ".", "_" and "-", starting with a letter or digit',
      'a.hcl:6:15: retry_join[0]: invalid address "10.0.0.5:99999": use host:port, such as "10.0.0.5:8500"',
      'a.hcl:6:33: retry_join[1]: invalid address "http://x": use host:port, such as "10.0.0.5:8500"',
      'a.hcl:7:13: http_addr: invalid address "localhost:port": use host:port, such as "10.0.0.5:8500"',
      'a.hcl:8:18: advertise_addr: invalid address "10.0.0.1:8500": use a host name or IP address without a port',
      'a.hcl:9:18: snapshot_every: must be at least 1, got 0',
      'a.hcl:10:24: enable_script_checks: expected a boolean (true or false), got string "yes"',
    ]);
    expect(errorsOf('servers = []')).to.deep.equal([
      'a.hcl:1:11: servers: must list at least one server address',
    ]);
  });

  it('a file with any error contributes no settings', () => {
    const r = parseConfigFile('node_name = "n"\nlog_level = "loud"', 'a.hcl');
    expect(r.errors).to.have.lengthOf(1);
    expect(r.settings).to.deep.equal({});
  });

  it('leaves `services register` files strict: settings are not service definitions', () => {
    expect(
      parseServiceDefinitions('node_name = "n"', 'a.hcl').errors.map(formatDiagnostic),
    ).to.deep.equal(['a.hcl:1:1: node_name: unknown key']);
  });

  it('merges the files of a dir in name order; equal values and node_meta keys combine', async () => {
    const r = await loadConfigDir(join(FIXTURES, 'settings/merge'));
    expect(relative(r.errors)).to.deep.equal([]);
    expect(r.services.map((s) => s.Name)).to.deep.equal(['web']);
    expect(r.settings).to.deep.equal({
      nodeName: 'web-1',
      datacenter: 'east',
      dataDir: '/var/lib/trellis/agent',
      advertiseAddr: '10.0.1.21',
      httpAddr: '0.0.0.0:8501',
      retryJoin: ['10.0.0.5:8500', '10.0.0.6'],
      enableScriptChecks: true,
      nodeMeta: { rack: 'r1', zone: 'z1' },
      logLevel: 'debug',
      heartbeatIntervalMs: 2000,
      heartbeatTtlMs: 15_000,
      syncIntervalMs: 60_000,
      bindAddr: '0.0.0.0:8500',
      snapshotEvery: 5000,
    });
  });

  it('a setting given two values in two files is an error naming both places', async () => {
    const r = await loadConfigDir(join(FIXTURES, 'settings/conflict'));
    expect(relative(r.errors)).to.deep.equal([
      'settings/conflict/b.hcl:2:1: node_name: already set to "x" at settings/conflict/a.hcl:1:1',
      'settings/conflict/b.hcl:3:9: ports.http: conflicts with http_addr set at settings/conflict/a.hcl:2:1: use one or the other',
      'settings/conflict/d.hcl:1:1: retry_join: already set to ["10.0.0.5:8500"] at settings/conflict/c.json:4:3',
    ]);
    // The later files contribute nothing, as with any other error.
    expect(r.services.map((s) => s.Name)).to.deep.equal(['api']);
    expect(r.settings).to.deep.equal({
      nodeName: 'x',
      httpAddr: '127.0.0.1:8500',
      datacenter: 'dc2',
      retryJoin: ['10.0.0.5:8500'],
    });
  });

  it('merges node_meta key by key, naming a key set to two values', () => {
    const entries = (text: string, file: string) =>
      decodeConfigFileAt(parseConfigText(text, file).root, file).settings;
    const r = mergeSettings([
      entries('node_meta { rack = "r1", zone = "z1" }', 'a.hcl'),
      entries('node_meta {\n  zone = "z1"\n  rack = "r2"\n}', 'b.hcl'),
    ]);
    expect(r.errors.map(formatDiagnostic)).to.deep.equal([
      'b.hcl:3:3: node_meta.rack: already set to "r1" at a.hcl:1:13',
    ]);
    expect(r.settings).to.deep.equal({ nodeMeta: { rack: 'r1', zone: 'z1' } });
  });
});
