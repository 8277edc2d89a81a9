/**
 * A sidecar or proxy whose listener is already one of this agent's proxy listeners (an inbound
 * port, an upstream's local port) is refused with a 400 naming both, and nothing changes: the
 * existing proxies keep their registrations. Re-registering a proxy with its own ports, or a
 * different address on the same port, is fine.
 */
import { expect } from 'chai';
import { normalizeServiceRegistration } from '../../../src/api/index.js';
import { LocalState } from '../../../src/agent/local/local-state.js';
import { MeshError } from '../../../src/core/index.js';

const newLocal = (): LocalState => new LocalState({ start() {}, stop() {} }, () => {});

/** web (sidecar on 21000, upstream api on 127.0.0.1:9191) is registered first in every row. */
const WEB = {
  Name: 'web',
  Port: 8080,
  Connect: {
    SidecarService: {
      Port: 21000,
      Proxy: { Upstreams: [{ DestinationName: 'api', LocalBindPort: 9191 }] },
    },
  },
};

const proxy = (port: number, extra: Record<string, unknown> = {}) => ({
  Kind: 'connect-proxy',
  Name: 'db-proxy',
  Port: port,
  Proxy: { DestinationServiceName: 'db', ...extra },
});

const ROWS: [string, Record<string, unknown>, string | undefined][] = [
  [
    "a second sidecar on web's inbound port",
    { Name: 'shop', Port: 7000, Connect: { SidecarService: { Port: 21000 } } },
    'Connect.SidecarService.Port: port 21000 on 0.0.0.0 is already the inbound listener of proxy "web-sidecar-proxy" (0.0.0.0:21000) on this agent; choose another port',
  ],
  [
    "a sidecar on web's upstream listener port",
    { Name: 'shop', Port: 7000, Connect: { SidecarService: { Port: 9191 } } },
    'Connect.SidecarService.Port: port 9191 on 0.0.0.0 is already the upstream listener for "api" of proxy "web-sidecar-proxy" (127.0.0.1:9191)',
  ],
  [
    "a sidecar whose upstream listens on web's upstream port",
    {
      Name: 'shop',
      Port: 7000,
      Connect: {
        SidecarService: {
          Port: 21001,
          Proxy: { Upstreams: [{ DestinationName: 'db', LocalBindPort: 9191 }] },
        },
      },
    },
    'Connect.SidecarService.Proxy.Upstreams[0].LocalBindPort: port 9191 on 127.0.0.1 is already the upstream listener for "api" of proxy "web-sidecar-proxy"',
  ],
  [
    "a sidecar whose upstream listens on web's inbound port",
    {
      Name: 'shop',
      Port: 7000,
      Connect: {
        SidecarService: {
          Port: 21001,
          Proxy: { Upstreams: [{ DestinationName: 'db', LocalBindPort: 21000 }] },
        },
      },
    },
    'Connect.SidecarService.Proxy.Upstreams[0].LocalBindPort: port 21000 on 127.0.0.1 is already the inbound listener of proxy "web-sidecar-proxy"',
  ],
  [
    "a standalone proxy on web's inbound port",
    proxy(21000),
    'Port: port 21000 on 0.0.0.0 is already the inbound listener of proxy "web-sidecar-proxy"',
  ],
  [
    'a standalone proxy bound to 127.0.0.1 on the upstream port',
    { ...proxy(9191), Address: '127.0.0.1' },
    'Port: port 9191 on 127.0.0.1 is already the upstream listener for "api"',
  ],
  [
    "a proxy whose upstream listens on its own inbound port's wildcard",
    proxy(21005, { Upstreams: [{ DestinationName: 'x', LocalBindPort: 21005 }] }),
    // validateProxy's own message for this case comes first.
    "Proxy.Upstreams[0].LocalBindPort: 21005 is the proxy's own port",
  ],
  ['a proxy on a free port', proxy(21001), undefined],
  [
    'an upstream on the same port but another loopback address',
    proxy(21002, {
      Upstreams: [{ DestinationName: 'x', LocalBindAddress: '127.0.0.2', LocalBindPort: 9191 }],
    }),
    undefined,
  ],
  ['web itself again, same ports (it replaces itself)', WEB, undefined],
  [
    'web again, its sidecar moved to its own upstream port',
    {
      ...WEB,
      Connect: {
        SidecarService: {
          Port: 9191,
          Proxy: { Upstreams: [{ DestinationName: 'api', LocalBindPort: 9191 }] },
        },
      },
    },
    "Proxy.Upstreams[0].LocalBindPort: 9191 is the proxy's own port",
  ],
];

describe('agent/local: listener clashes between proxies of one agent', () => {
  for (const [name, body, message] of ROWS) {
    it(`${name}: ${message ? '400' : 'accepted'}`, () => {
      const local = newLocal();
      local.addService(normalizeServiceRegistration(WEB), 'api');
      const before = JSON.stringify([...local.services.entries()]);
      let err: unknown;
      try {
        local.addService(normalizeServiceRegistration(body), 'api');
      } catch (e) {
        err = e;
      }
      if (message === undefined) {
        expect(err, String(err)).to.equal(undefined);
        return;
      }
      expect(err).to.be.instanceOf(MeshError);
      expect((err as MeshError).status).to.equal(400);
      expect((err as MeshError).message).to.include(message);
      expect(JSON.stringify([...local.services.entries()]), 'nothing changed').to.equal(before);
    });
  }
});

describe("agent/local: listener clashes with the agent's own listeners", () => {
  const withApi = (): LocalState => {
    const local = newLocal();
    local.reserved = () => [
      { address: '127.0.0.1', port: 8500, what: "the agent's HTTP API" },
      { address: '0.0.0.0', port: 21000, what: "the agent's metrics listener" },
    ];
    return local;
  };

  it('refuses a sidecar on the API port, naming both', () => {
    const local = withApi();
    expect(() =>
      local.addService(
        normalizeServiceRegistration({ Name: 'web', Connect: { SidecarService: { Port: 8500 } } }),
        'api',
      ),
    ).to.throw(
      "Connect.SidecarService.Port: port 8500 on 0.0.0.0 is already the agent's HTTP API (127.0.0.1:8500) on this agent; choose another port",
    );
    expect(local.services.size).to.equal(0);
  });

  it('refuses an upstream on a port the agent listens on every address', () => {
    const local = withApi();
    expect(() =>
      local.addService(
        normalizeServiceRegistration(
          proxy(21001, {
            Upstreams: [{ DestinationName: 'x', LocalBindPort: 21000 }],
          }),
        ),
        'api',
      ),
    ).to.throw(
      "Proxy.Upstreams[0].LocalBindPort: port 21000 on 127.0.0.1 is already the agent's metrics listener",
    );
  });

  it('never assigns a reserved port to a sidecar', () => {
    const local = withApi();
    local.addService(
      normalizeServiceRegistration({ Name: 'web', Port: 80, Connect: { SidecarService: {} } }),
      'api',
    );
    expect(local.services.get('web-sidecar-proxy')!.service.Port).to.equal(21001);
  });
});

describe('agent/local: checkServiceSet (a config dir as a whole)', () => {
  it('refuses a set whose second service clashes with the first, naming its index', () => {
    const local = newLocal();
    const set = [
      WEB,
      { Name: 'shop', Port: 7000, Connect: { SidecarService: { Port: 21000 } } },
    ].map((r) => normalizeServiceRegistration(r));
    let err: (Error & { index?: number }) | undefined;
    try {
      local.checkServiceSet(set, () => true);
    } catch (e) {
      err = e as Error & { index?: number };
    }
    expect(err?.message).to.include('is already the inbound listener of proxy "web-sidecar-proxy"');
    expect(err?.index).to.equal(1);
    expect(local.services.size).to.equal(0);
  });

  it('lets a set move a port from one of its services to another', () => {
    const local = newLocal();
    local.addService(normalizeServiceRegistration(WEB), 'file');
    const moved = {
      ...WEB,
      Connect: { SidecarService: { Port: 21001, Proxy: WEB.Connect.SidecarService.Proxy } },
    };
    const shop = { Name: 'shop', Port: 7000, Connect: { SidecarService: { Port: 21000 } } };
    const set = [moved, shop].map((r) => normalizeServiceRegistration(r));
    local.checkServiceSet(set, (_id, e) => e.source === 'file');
    // Still refused against a service that stays (registered through the API).
    const api = newLocal();
    api.addService(normalizeServiceRegistration(WEB), 'api');
    expect(() => api.checkServiceSet([set[1]!], (_id, e) => e.source === 'file')).to.throw(
      'is already the inbound listener of proxy "web-sidecar-proxy"',
    );
  });
});
