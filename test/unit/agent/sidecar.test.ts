import { expect } from 'chai';
import { normalizeServiceRegistration } from '../../../src/api/index.js';
import { MeshError } from '../../../src/core/index.js';
import { expandSidecar, pickSidecarPort, validateProxy } from '../../../src/agent/local/sidecar.js';

const none = new Set<number>();

/** The 400 a call throws, as "field: message". */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(MeshError);
    expect((err as MeshError).status).to.equal(400);
    return (err as MeshError).message;
  }
  throw new Error('expected a 400');
}

describe('agent/local/sidecar: expandSidecar', () => {
  it("fills Consul's defaults for an empty sidecar_service", () => {
    const reg = normalizeServiceRegistration({
      Name: 'web',
      ID: 'web-1',
      Port: 8080,
      Address: '10.0.0.5',
      Tags: ['v1'],
      Meta: { version: '1' },
      Connect: { SidecarService: {} },
    });
    const out = expandSidecar(reg, { used: none })!;
    expect(out.parent).to.deep.include({ Name: 'web', ID: 'web-1', Connect: {} });
    expect(out.parent.Connect).to.not.have.property('SidecarService');
    expect(out.sidecar).to.deep.equal({
      Kind: 'connect-proxy',
      ID: 'web-1-sidecar-proxy',
      Name: 'web-sidecar-proxy',
      Tags: ['v1'],
      Meta: { version: '1' },
      Address: '10.0.0.5',
      Port: 21000,
      EnableTagOverride: false,
      Proxy: {
        DestinationServiceName: 'web',
        DestinationServiceID: 'web-1',
        LocalServiceAddress: '127.0.0.1',
        LocalServicePort: 8080,
      },
    });
    expect(out.checks).to.deep.equal([
      {
        CheckID: 'service:web-1-sidecar-proxy:2',
        Name: 'Connect Sidecar Aliasing web-1',
        AliasService: 'web-1',
      },
    ]);
  });

  it('keeps what the block sets and fills upstream defaults', () => {
    const reg = normalizeServiceRegistration({
      Name: 'web',
      Port: 8080,
      Tags: ['v1'],
      Meta: { a: '1' },
      Connect: {
        SidecarService: {
          Name: 'web-envoy',
          Port: 20000,
          Tags: ['proxy'],
          Meta: { b: '2' },
          Address: '10.0.0.9',
          Check: { TCP: '127.0.0.1:20000', Interval: '10s' },
          Proxy: {
            LocalServicePort: 9090,
            Upstreams: [
              { DestinationName: 'api', LocalBindPort: 9191 },
              {
                DestinationName: 'db',
                LocalBindPort: 9192,
                LocalBindAddress: '127.0.0.2',
                Datacenter: 'dc2',
              },
            ],
          },
        },
      },
    });
    const out = expandSidecar(reg, { used: none })!;
    expect(out.sidecar).to.deep.include({
      ID: 'web-sidecar-proxy',
      Name: 'web-envoy',
      Port: 20000,
      Tags: ['proxy'],
      Meta: { b: '2' },
      Address: '10.0.0.9',
    });
    expect(out.sidecar.Proxy).to.deep.equal({
      DestinationServiceName: 'web',
      DestinationServiceID: 'web',
      LocalServiceAddress: '127.0.0.1',
      LocalServicePort: 9090,
      Upstreams: [
        {
          DestinationType: 'service',
          DestinationName: 'api',
          LocalBindAddress: '127.0.0.1',
          LocalBindPort: 9191,
        },
        {
          DestinationType: 'service',
          DestinationName: 'db',
          LocalBindAddress: '127.0.0.2',
          LocalBindPort: 9192,
          Datacenter: 'dc2',
        },
      ],
    });
    // Its own check replaces the defaults.
    expect(out.checks).to.deep.equal([{ TCP: '127.0.0.1:20000', Interval: '10s' }]);
  });

  it('takes the lowest free port, skipping the parent and its own upstream listeners', () => {
    const reg = normalizeServiceRegistration({
      Name: 'web',
      Port: 21000,
      Connect: {
        SidecarService: {
          Proxy: { Upstreams: [{ DestinationName: 'api', LocalBindPort: 21001 }] },
        },
      },
    });
    expect(expandSidecar(reg, { used: new Set([21002, 8500]) })!.sidecar.Port).to.equal(21003);
  });

  it('is undefined without a sidecar', () => {
    expect(expandSidecar({ Name: 'web', Connect: { Native: true } }, { used: none })).to.equal(
      undefined,
    );
  });

  it('refuses a sidecar when every port of the range is taken', () => {
    const reg = normalizeServiceRegistration({ Name: 'web', Connect: { SidecarService: {} } });
    const used = new Set(Array.from({ length: 256 }, (_, i) => 21000 + i));
    expect(refusal(() => expandSidecar(reg, { used }))).to.equal(
      'Connect.SidecarService.Port: no port given for the sidecar service and none is left in the range [21000, 21255]; set one',
    );
  });

  it('refuses upstreams the proxy could not listen for', () => {
    const side = (Upstreams: unknown[], Port?: number): unknown => ({
      Name: 'web',
      Connect: { SidecarService: { ...(Port ? { Port } : {}), Proxy: { Upstreams } } },
    });
    const expand = (raw: unknown): unknown =>
      expandSidecar(normalizeServiceRegistration(raw), { used: none });
    expect(refusal(() => expand(side([{ DestinationName: 'api' }])))).to.equal(
      'Connect.SidecarService.Proxy.Upstreams[0].LocalBindPort: missing (required): the local port the upstream listens on, 1-65535',
    );
    expect(
      refusal(() =>
        expand(
          side([
            { DestinationName: 'api', LocalBindPort: 9191 },
            { DestinationName: 'db', LocalBindPort: 9191, LocalBindAddress: '127.0.0.1' },
          ]),
        ),
      ),
    ).to.equal(
      'Connect.SidecarService.Proxy.Upstreams[1].LocalBindPort: 127.0.0.1:9191 is already the listener of Upstreams[0]',
    );
    // Same port on another address is fine.
    expect(
      expand(
        side([
          { DestinationName: 'api', LocalBindPort: 9191 },
          { DestinationName: 'db', LocalBindPort: 9191, LocalBindAddress: '127.0.0.2' },
        ]),
      ),
    ).to.not.equal(undefined);
    expect(
      refusal(() => expand(side([{ DestinationName: 'api', LocalBindPort: 21000 }], 21000))),
    ).to.equal(
      "Connect.SidecarService.Proxy.Upstreams[0].LocalBindPort: 21000 is the proxy's own port; choose another",
    );
    expect(
      refusal(() =>
        expand(
          side([
            { DestinationName: 'api', LocalBindPort: 9191 },
            { DestinationName: 'api', LocalBindPort: 9192 },
          ]),
        ),
      ),
    ).to.equal(
      'Connect.SidecarService.Proxy.Upstreams[1].DestinationName: "api" is already Upstreams[0]',
    );
  });

  it('refuses, in the body, what Consul refuses of a sidecar block', () => {
    expect(
      refusal(() =>
        normalizeServiceRegistration({ Name: 'web', Connect: { SidecarService: { ID: 'x' } } }),
      ),
    ).to.match(/^Connect\.SidecarService\.ID: a sidecar service cannot set its ID/);
    expect(
      refusal(() =>
        normalizeServiceRegistration({
          Name: 'web',
          Connect: { SidecarService: { Kind: 'mesh-gateway' } },
        }),
      ),
    ).to.equal('Connect.SidecarService.Kind: a sidecar service is always a "connect-proxy"');
    expect(
      refusal(() =>
        normalizeServiceRegistration({
          Name: 'web',
          Connect: { SidecarService: { Connect: { SidecarService: {} } } },
        }),
      ),
    ).to.equal(
      'Connect.SidecarService.Connect.SidecarService: a sidecar service cannot have a sidecar of its own',
    );
    // Kind and destination may be left to the agent, even when the kind is spelled out.
    const ok = normalizeServiceRegistration({
      Name: 'web',
      Connect: { SidecarService: { Kind: 'connect-proxy', Proxy: { Upstreams: [] } } },
    });
    expect(expandSidecar(ok, { used: none })!.sidecar.Proxy!.DestinationServiceName).to.equal(
      'web',
    );
  });

  it('checks directly registered proxies the same way', () => {
    expect(() =>
      validateProxy({
        Name: 'p',
        Kind: 'connect-proxy',
        Port: 20000,
        Proxy: {
          DestinationServiceName: 'web',
          Upstreams: [{ DestinationName: 'a', LocalBindPort: 1 }],
        },
      }),
    ).to.not.throw();
    expect(
      refusal(() =>
        validateProxy({
          Name: 'p',
          Kind: 'connect-proxy',
          Port: 20000,
          Proxy: {
            DestinationServiceName: 'web',
            Upstreams: [{ DestinationName: 'a', LocalBindPort: 20000 }],
          },
        }),
      ),
    ).to.equal("Proxy.Upstreams[0].LocalBindPort: 20000 is the proxy's own port; choose another");
  });
});

describe('agent/local/sidecar: pickSidecarPort', () => {
  it('keeps the previous port while it is free and in the range', () => {
    expect(pickSidecarPort({ used: none, previous: 21007 })).to.equal(21007);
    expect(pickSidecarPort({ used: new Set([21007]), previous: 21007 })).to.equal(21000);
    expect(pickSidecarPort({ used: none, previous: 9999 })).to.equal(21000);
  });

  it('takes the lowest free port and gives up when there is none', () => {
    expect(pickSidecarPort({ used: new Set([21000, 21001, 21003]) })).to.equal(21002);
    expect(pickSidecarPort({ used: new Set([5, 6]), min: 5, max: 6 })).to.equal(undefined);
    expect(pickSidecarPort({ used: new Set([5]), min: 5, max: 6 })).to.equal(6);
  });
});
