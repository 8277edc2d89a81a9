/**
 * The precedence rules of src/bin/settings.ts: a flag given on the command line > a setting in a
 * config-dir file > the default.
 */
import { expect } from 'chai';
import { UsageError } from '../../../src/cli/index.js';
import type { AgentSettings } from '../../../src/config/index.js';
import {
  changedSettings,
  resolveAgent,
  resolveServer,
  unusedSettings,
} from '../../../src/bin/settings.js';

const FILE: AgentSettings = {
  nodeName: 'file-node',
  datacenter: 'east',
  dataDir: '/file/data',
  advertiseAddr: '10.0.1.21',
  httpAddr: '127.0.0.1:8600',
  retryJoin: ['10.0.0.5:8500', '10.0.0.6', '[fd00::1]:8500'],
  enableScriptChecks: true,
  nodeMeta: { rack: 'r1', zone: 'z1' },
  logLevel: 'debug',
  heartbeatIntervalMs: 1000,
  heartbeatTtlMs: 5000,
  syncIntervalMs: 30_000,
  bindAddr: '0.0.0.0:8700',
  snapshotEvery: 500,
};

describe('bin/settings: agent', () => {
  it('uses the defaults when neither flags nor files say anything', () => {
    expect(
      resolveAgent({ servers: ['s:8500'], dataDir: '/d' }, {}, '127.0.0.1:8500'),
    ).to.deep.equal({
      servers: ['s:8500'],
      dataDir: '/d',
      datacenter: 'dc1',
      httpAddr: '127.0.0.1:8500',
      advertise: '127.0.0.1',
      enableScriptChecks: false,
      nodeMeta: {},
      logLevel: 'info',
      // DNS on by default, as a Consul agent's.
      dnsAddr: '127.0.0.1:8600',
      // Consul's defaults: 200 connections per client address, 5 s to the first request.
      httpLimits: { maxPerClient: 200, handshakeTimeoutMs: 5000 },
    });
  });

  it('answers DNS on 127.0.0.1:8600 unless a flag or file says another address or off', () => {
    const base = { servers: ['s:8500'], dataDir: '/d' };
    expect(resolveAgent(base, {}, 'x:1').dnsAddr).to.equal('127.0.0.1:8600');
    expect(resolveAgent(base, { dnsAddr: '0.0.0.0:53' }, 'x:1').dnsAddr).to.equal('0.0.0.0:53');
    expect(resolveAgent(base, { dnsAddr: 'off' }, 'x:1').dnsAddr).to.equal(undefined);
    expect(resolveAgent({ ...base, dnsBind: 'off' }, {}, 'x:1').dnsAddr).to.equal(undefined);
  });

  it('takes every setting from the files when no flag is given; retry_join gets a port', () => {
    expect(resolveAgent({}, FILE, '127.0.0.1:8500')).to.deep.equal({
      servers: ['10.0.0.5:8500', '10.0.0.6:8500', '[fd00::1]:8500'],
      dataDir: '/file/data',
      datacenter: 'east',
      httpAddr: '127.0.0.1:8600',
      advertise: '10.0.1.21',
      enableScriptChecks: true,
      nodeMeta: { rack: 'r1', zone: 'z1' },
      logLevel: 'debug',
      node: 'file-node',
      heartbeatIntervalMs: 1000,
      heartbeatTtlMs: 5000,
      syncIntervalMs: 30_000,
      dnsAddr: '127.0.0.1:8600',
      httpLimits: { maxPerClient: 200, handshakeTimeoutMs: 5000 },
    });
  });

  it('serves metrics only where asked: the flag beats the file, and off turns it off', () => {
    const base = { servers: ['s:8500'], dataDir: '/d' };
    const file: AgentSettings = { metricsAddr: '127.0.0.1:9102' };
    expect(resolveAgent(base, {}, 'x:1').metricsAddr).to.equal(undefined);
    expect(resolveAgent(base, file, 'x:1').metricsAddr).to.equal('127.0.0.1:9102');
    expect(
      resolveAgent({ ...base, metricsBind: '0.0.0.0:9200' }, file, 'x:1').metricsAddr,
    ).to.equal('0.0.0.0:9200');
    expect(resolveAgent({ ...base, metricsBind: 'off' }, file, 'x:1').metricsAddr).to.equal(
      undefined,
    );
    expect(unusedSettings('server', file)).to.deep.equal(['metrics_addr']);
  });

  it('lets every flag given override the files', () => {
    const r = resolveAgent(
      {
        node: 'flag-node',
        datacenter: 'west',
        dataDir: '/flag/data',
        advertise: '10.9.9.9',
        bind: '127.0.0.1:0',
        servers: ['flag:8500'],
        enableScriptChecks: false,
        nodeMeta: { rack: 'r9' },
        logLevel: 'warn',
        heartbeatIntervalMs: 300,
        heartbeatTtlMs: 3000,
        syncIntervalMs: 2000,
      },
      FILE,
      '127.0.0.1:8500',
    );
    expect(r).to.deep.equal({
      servers: ['flag:8500'],
      dataDir: '/flag/data',
      datacenter: 'west',
      httpAddr: '127.0.0.1:0',
      advertise: '10.9.9.9',
      // false given on the command line still beats true in a file.
      enableScriptChecks: false,
      // --node-meta replaces the file's value key by key.
      nodeMeta: { rack: 'r9', zone: 'z1' },
      logLevel: 'warn',
      node: 'flag-node',
      heartbeatIntervalMs: 300,
      heartbeatTtlMs: 3000,
      syncIntervalMs: 2000,
      dnsAddr: '127.0.0.1:8600',
      httpLimits: { maxPerClient: 200, handshakeTimeoutMs: 5000 },
    });
  });

  it('http address: --bind > --http-addr given > http_addr > the --http-addr default', () => {
    const resolve = (flags: { bind?: string; httpAddr?: string }, file: AgentSettings) =>
      resolveAgent({ servers: ['s'], dataDir: '/d', ...flags }, file, 'env:1').httpAddr;
    expect(resolve({ bind: 'b:1', httpAddr: 'h:1' }, { httpAddr: 'f:1' })).to.equal('b:1');
    expect(resolve({ httpAddr: 'h:1' }, { httpAddr: 'f:1' })).to.equal('h:1');
    expect(resolve({}, { httpAddr: 'f:1' })).to.equal('f:1');
    expect(resolve({}, {})).to.equal('env:1');
  });

  it('connection limits: flag > limits { } in a file > the defaults, each on its own', () => {
    const base = { servers: ['s:8500'], dataDir: '/d' };
    const file: AgentSettings = { httpMaxConnsPerClient: 50, httpHandshakeTimeoutMs: 2000 };
    expect(resolveAgent(base, file, 'x:1').httpLimits).to.deep.equal({
      maxPerClient: 50,
      handshakeTimeoutMs: 2000,
    });
    expect(
      resolveAgent({ ...base, httpMaxConnsPerClient: 0 }, file, 'x:1').httpLimits,
    ).to.deep.equal({ maxPerClient: 0, handshakeTimeoutMs: 2000 });
    expect(
      resolveServer({ dataDir: '/d', httpHandshakeTimeoutMs: 0 }, { httpMaxConnsPerClient: 9 })
        .httpLimits,
    ).to.deep.equal({ maxPerClient: 9, handshakeTimeoutMs: 0 });
  });

  it('is a usage error without a server address or a data dir from either place', () => {
    expect(() => resolveAgent({ dataDir: '/d' }, {}, 'x'))
      .to.throw(UsageError)
      .with.property(
        'message',
        'no server address: pass --server or set retry_join in a config file',
      );
    expect(() => resolveAgent({ servers: ['s'] }, {}, 'x'))
      .to.throw(UsageError)
      .with.property('message', 'no data dir: pass --data-dir or set data_dir in a config file');
    expect(() => resolveAgent({}, { retryJoin: ['s'], dataDir: '/d' }, 'x')).not.to.throw();
  });
});

describe('bin/settings: server', () => {
  it('turns ACLs off with acl.enabled = false, and refuses that with a deny default', () => {
    expect(resolveServer({ dataDir: '/d' }, { aclEnabled: false })).to.include({
      aclEnabled: false,
      aclDefaultPolicy: 'allow',
    });
    expect(
      resolveServer({ dataDir: '/d' }, { aclEnabled: false, aclDefaultPolicy: 'allow' }),
    ).to.include({ aclEnabled: false });
    expect(() => resolveServer({ dataDir: '/d' }, { aclEnabled: false, aclDefaultPolicy: 'deny' }))
      .to.throw(UsageError)
      .with.property(
        'message',
        'acl.default_policy "deny" has no effect with acl.enabled = false: remove one of them',
      );
    expect(() => resolveServer({ dataDir: '/d', aclDefaultPolicy: 'deny' }, { aclEnabled: false }))
      .to.throw(UsageError)
      .with.property('message')
      .that.matches(/^--acl-default-policy "deny"/);
  });

  it('uses the defaults, then the files, then the flags', () => {
    expect(resolveServer({ dataDir: '/d' }, {})).to.deep.equal({
      dataDir: '/d',
      datacenter: 'dc1',
      bind: '0.0.0.0:8500',
      logLevel: 'info',
      enableScriptChecks: false,
      aclEnabled: true,
      aclDefaultPolicy: 'deny',
      httpLimits: { maxPerClient: 200, handshakeTimeoutMs: 5000 },
    });
    expect(resolveServer({}, { ...FILE, aclDefaultPolicy: 'allow' })).to.include({
      aclDefaultPolicy: 'allow',
    });
    expect(
      resolveServer({ aclDefaultPolicy: 'deny' }, { ...FILE, aclDefaultPolicy: 'allow' }),
    ).to.include({ aclDefaultPolicy: 'deny' });
    expect(resolveServer({}, FILE)).to.deep.equal({
      dataDir: '/file/data',
      datacenter: 'east',
      // bind_addr, never the agents' http_addr.
      bind: '0.0.0.0:8700',
      logLevel: 'debug',
      enableScriptChecks: true,
      nodeMeta: { rack: 'r1', zone: 'z1' },
      node: 'file-node',
      advertise: '10.0.1.21',
      snapshotEvery: 500,
      aclEnabled: true,
      aclDefaultPolicy: 'deny',
      httpLimits: { maxPerClient: 200, handshakeTimeoutMs: 5000 },
    });
    expect(
      resolveServer(
        {
          dataDir: '/flag',
          bind: '127.0.0.1:0',
          node: 'srv',
          snapshotEvery: 7,
          nodeGraceMs: 0,
          sessionMinTtlMs: 1000,
        },
        FILE,
      ),
    ).to.include({
      dataDir: '/flag',
      bind: '127.0.0.1:0',
      node: 'srv',
      snapshotEvery: 7,
      nodeGraceMs: 0,
      sessionMinTtlMs: 1000,
    });
    expect(() => resolveServer({}, {})).to.throw(
      UsageError,
      'no data dir: pass --data-dir or set data_dir in a config file',
    );
  });

  it('names the file settings the other kind of daemon uses', () => {
    expect(unusedSettings('agent', FILE)).to.deep.equal(['bind_addr', 'snapshot_every']);
    expect(unusedSettings('server', FILE)).to.deep.equal([
      'retry_join',
      'http_addr',
      'heartbeat_interval',
      'heartbeat_ttl',
      'sync_interval',
    ]);
    expect(unusedSettings('agent', { nodeName: 'n' })).to.deep.equal([]);
  });
});

describe('bin/settings: reload', () => {
  it('lists the settings whose effective value changed, by file key', () => {
    const before = resolveAgent({ node: 'flag-node' }, FILE, 'x');
    const after = resolveAgent(
      { node: 'flag-node' },
      { ...FILE, nodeName: 'renamed', heartbeatTtlMs: 9000, nodeMeta: { rack: 'r2' } },
      'x',
    );
    // node_name is overridden by --node, so its change in the file does not matter.
    expect(changedSettings(before, after)).to.deep.equal([
      { setting: 'node_meta', from: { rack: 'r1', zone: 'z1' }, to: { rack: 'r2' } },
      { setting: 'heartbeat_ttl', from: 5000, to: 9000 },
    ]);
    expect(changedSettings(before, resolveAgent({ node: 'flag-node' }, FILE, 'x'))).to.deep.equal(
      [],
    );
  });
});
