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
