import { expect } from 'chai';
import type {
  AgentService,
  CARoots,
  Intention,
  IssuedCert,
  ServiceEntry,
} from '../../../src/api/index.js';
import {
  buildPlan,
  resolveAccessLogs,
  resolveBalancer,
  resolveProtocol,
} from '../../../src/agent/proxycfg/build-plan.js';
import { sidecarSpec } from '../../../src/agent/proxycfg/manager.js';

const roots: CARoots = {
  ActiveRootID: 'r2',
  TrustDomain: 'td.consul',
  Roots: [
    { ID: 'r1', RootCert: 'R1', Active: false } as CARoots['Roots'][number],
    { ID: 'r2', RootCert: 'R2', Active: true } as CARoots['Roots'][number],
  ],
};

const leaf = {
  CertPEM: 'LEAF',
  PrivateKeyPEM: 'KEY',
  ValidBefore: '2030-01-01T00:00:00Z',
} as IssuedCert;

const intention = (s: string, d: string, a: 'allow' | 'deny'): Intention =>
  ({ ID: `${s}-${d}`, SourceName: s, DestinationName: d, Action: a }) as Intention;

describe('proxycfg: sidecar specs and plans', () => {
  it('reads a connect-proxy service as Consul registers it', () => {
    const spec = sidecarSpec(
      {
        service: {
          Kind: 'connect-proxy',
          ID: 'web-sidecar-proxy',
          Service: 'web-sidecar-proxy',
          Tags: [],
          Meta: {},
          Port: 21000,
          Address: '',
          Weights: { Passing: 1, Warning: 1 },
          EnableTagOverride: false,
          Proxy: {
            DestinationServiceName: 'web',
            LocalServicePort: 8080,
            Upstreams: [
              { DestinationName: 'api', LocalBindPort: 9191 },
              { DestinationType: 'prepared_query', DestinationName: 'q', LocalBindPort: 9292 },
            ],
          },
        },
        token: 't',
      },
      'dc1',
    );
    expect(spec).to.deep.equal({
      id: 'web-sidecar-proxy',
      destination: 'web',
      datacenter: 'dc1',
      bindAddress: '0.0.0.0',
      bindPort: 21000,
      localApp: { address: '127.0.0.1', port: 8080 },
      upstreams: [{ destination: 'api', bindAddress: '127.0.0.1', bindPort: 9191 }],
      token: 't',
    });
    const plain = sidecarSpec(
      { service: { Kind: '', ID: 'web', Service: 'web', Port: 80 } as AgentService },
      'dc1',
    );
    expect(plain).to.equal(undefined);
  });

  it('compiles a plan: identities from the trust domain, only intentions that reach the service', () => {
    const endpoints = new Map<string, ServiceEntry[]>([
      [
        'api',
        [
          {
            Node: { Node: 'n2', Address: '198.18.0.2' },
            Service: { Address: '', Port: 21001 },
          } as ServiceEntry,
          {
            Node: { Node: 'n3', Address: '198.18.0.3' },
            Service: { Address: '198.18.1.3', Port: 21000 },
          } as ServiceEntry,
        ],
      ],
    ]);
    const plan = buildPlan(
      {
        spec: {
          id: 'web-sidecar-proxy',
          destination: 'web',
          datacenter: 'dc1',
          bindAddress: '0.0.0.0',
          bindPort: 21000,
          localApp: { address: '127.0.0.1', port: 8080 },
          upstreams: [{ destination: 'api', bindAddress: '127.0.0.1', bindPort: 9191 }],
        },
        roots,
        leaf,
        defaultAllow: false,
        intentions: [
          intention('a', 'web', 'allow'),
          intention('b', 'api', 'deny'),
          intention('*', '*', 'deny'),
        ],
        endpoints,
        protocolOf: (svc) => (svc === 'api' ? 'grpc' : 'http'),
        balancerOf: (svc) => (svc === 'api' ? 'least_request' : 'random'),
      },
      7,
    );
    expect(plan.version).to.equal(7);
    expect(plan.identity).to.equal('spiffe://td.consul/ns/default/dc/dc1/svc/web');
    expect(plan.tls).to.deep.equal({
      certChain: 'LEAF',
      key: 'KEY',
      roots: ['R1', 'R2'],
      notAfter: Date.parse('2030-01-01T00:00:00Z'),
    });
    expect(plan.intentions.map((i) => i.ID)).to.deep.equal(['a-web', '*-*']);
    expect(plan.inbound.protocol).to.equal('http');
    expect(plan.upstreams[0]).to.deep.include({
      protocol: 'grpc',
      balancer: 'least_request',
      identity: 'spiffe://td.consul/ns/default/dc/dc1/svc/api',
      endpoints: [
        { address: '198.18.0.2', port: 21001, node: 'n2' },
        { address: '198.18.1.3', port: 21000, node: 'n3' },
      ],
    });
  });

  it('resolves the protocol as Consul does: service-defaults, then proxy-defaults, then tcp', () => {
    expect(resolveProtocol({ Protocol: 'http' }, { Config: { protocol: 'grpc' } })).to.equal(
      'http',
    );
    expect(resolveProtocol(null, { Config: { protocol: 'grpc' } })).to.equal('grpc');
    expect(resolveProtocol({}, null)).to.equal('tcp');
    expect(resolveProtocol({ Protocol: 'bogus' }, null)).to.equal('tcp');
  });

  it("takes an upstream's balancer from its service-resolver, round robin otherwise", () => {
    expect(resolveBalancer({ LoadBalancer: { Policy: 'least_request' } })).to.equal(
      'least_request',
    );
    expect(resolveBalancer({ LoadBalancer: { Policy: 'random' } })).to.equal('random');
    expect(resolveBalancer({ LoadBalancer: { Policy: 'ring_hash' } })).to.equal('round_robin');
    expect(resolveBalancer(null)).to.equal('round_robin');
  });

  it('reads the access log from proxy-defaults AccessLogs as Consul does: off unless Enabled', () => {
    const off = { enabled: false, listenerLogs: true, target: { type: 'stdout' } };
    expect(resolveAccessLogs(null)).to.deep.equal(off);
    expect(resolveAccessLogs({})).to.deep.equal(off);
    expect(resolveAccessLogs({ AccessLogs: { Type: 'stderr' } })).to.deep.equal({
      ...off,
      target: { type: 'stderr' },
    });
    expect(resolveAccessLogs({ AccessLogs: { Enabled: true } })).to.deep.equal({
      enabled: true,
      listenerLogs: true,
      target: { type: 'stdout' },
    });
    expect(
      resolveAccessLogs({
        AccessLogs: {
          Enabled: true,
          DisableListenerLogs: true,
          Type: 'file',
          Path: '/var/log/trellis/access.log',
        },
      }),
    ).to.deep.equal({
      enabled: true,
      listenerLogs: false,
      target: { type: 'file', path: '/var/log/trellis/access.log' },
    });
  });

  it('puts the access log in every plan, off when not given', () => {
    const spec = {
      id: 'web-sidecar-proxy',
      destination: 'web',
      datacenter: 'dc1',
      bindAddress: '127.0.0.1',
      bindPort: 21000,
      localApp: { address: '127.0.0.1', port: 8080 },
      upstreams: [],
    };
    const base = { spec, roots, leaf, defaultAllow: false, intentions: [], endpoints: new Map() };
    expect(buildPlan(base, 1).accessLogs).to.deep.equal({
      enabled: false,
      listenerLogs: true,
      target: { type: 'stdout' },
    });
    const on = { enabled: true, listenerLogs: false, target: { type: 'stderr' as const } };
    expect(buildPlan({ ...base, accessLogs: on }, 2).accessLogs).to.deep.equal(on);
  });
});
