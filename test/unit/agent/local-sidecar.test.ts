/**
 * LocalState with sidecars, wired to a real CheckScheduler as the agent wires them: the sidecar
 * comes and goes with its service, keeps its port, and its alias check follows the service.
 */
import { expect } from 'chai';
import {
  normalizeServiceRegistration,
  toAgentService,
  type HealthStatus,
} from '../../../src/api/index.js';
import { CheckScheduler } from '../../../src/agent/checks/index.js';
import { LocalState } from '../../../src/agent/local/local-state.js';
import { MeshError } from '../../../src/core/index.js';
import { FakeClock, scriptedRandom } from '../checks/fake-clock.js';

function harness(): { local: LocalState; checks: CheckScheduler } {
  const clock = new FakeClock();
  const checks = new CheckScheduler({
    clock,
    random: scriptedRandom(0.5),
    onChange: (id, r) => local.setCheckStatus(id, r.status, r.output),
    aliasSource: (id) => local.aliasTarget(id, 'host-a'),
  });
  const local: LocalState = new LocalState(
    { start: (id, def, st) => void checks.add(id, def, st), stop: (id) => void checks.remove(id) },
    () => checks.refreshAliases(),
  );
  return { local, checks };
}

const web = (
  extra: Record<string, unknown> = {},
): ReturnType<typeof normalizeServiceRegistration> =>
  normalizeServiceRegistration({
    Name: 'web',
    Port: 8080,
    Check: { CheckID: 'web-ttl', TTL: '30s', Status: 'passing' },
    Connect: { SidecarService: {} },
    ...extra,
  });

const statusOf = (local: LocalState, id: string): [HealthStatus, string] | undefined => {
  const c = local.checks.get(id)?.check;
  return c && [c.Status, c.Output];
};

describe('agent/local: sidecar registration', () => {
  it('registers the sidecar as a local service and removes it with its service', () => {
    const { local } = harness();
    local.addService(web(), 'api', true, 'tok');
    expect([...local.services.keys()]).to.deep.equal(['web', 'web-sidecar-proxy']);
    const side = local.services.get('web-sidecar-proxy')!;
    expect(side.sidecarOf).to.equal('web');
    expect(side.token).to.equal('tok');
    expect(side.service).to.deep.include({ Kind: 'connect-proxy', Port: 21000 });
    // The parent is stored without the block and shows `Connect: {}`.
    expect(local.services.get('web')!.service.Connect).to.deep.equal({});
    expect(local.services.get('web')!.registration.Connect).to.deep.equal({});
    local.removeService('web');
    expect(local.services.size).to.equal(0);
    expect(local.checks.size).to.equal(0);
  });

  it('stores both as the catalog stores them, so anti-entropy finds nothing to rewrite', () => {
    const { local } = harness();
    local.addService(
      web({
        Connect: {
          SidecarService: {
            Proxy: { Upstreams: [{ DestinationName: 'api', LocalBindPort: 9191 }] },
          },
        },
      }),
      'api',
    );
    for (const { service } of local.services.values()) {
      // What the catalog does with the Service of a registration.
      const stored = toAgentService(normalizeServiceRegistration({ ...service }, 'Service'));
      expect(stored).to.deep.equal(service);
    }
  });

  it('gives each sidecar its own port and keeps it across re-registrations', () => {
    const { local } = harness();
    local.addService(web(), 'api');
    local.addService(
      normalizeServiceRegistration({ Name: 'api', Port: 9000, Connect: { SidecarService: {} } }),
      'api',
    );
    expect(local.services.get('api-sidecar-proxy')!.service.Port).to.equal(21001);
    // Freed ports are handed out again, lowest first; the others stay where they are.
    local.removeService('web');
    local.addService(
      normalizeServiceRegistration({ Name: 'db', Connect: { SidecarService: {} } }),
      'api',
    );
    expect(local.services.get('db-sidecar-proxy')!.service.Port).to.equal(21000);
    local.addService(web({ Tags: ['v2'] }), 'api');
    expect(local.services.get('web-sidecar-proxy')!.service.Port).to.equal(21002);
    // Re-registering keeps the port (and takes the new tags).
    local.addService(web({ Tags: ['v3'] }), 'api');
    expect(local.services.get('web-sidecar-proxy')!.service).to.deep.include({
      Port: 21002,
      Tags: ['v3'],
    });
    // A re-registration without the block leaves the sidecar alone, as Consul does.
    local.addService(normalizeServiceRegistration({ Name: 'web', Port: 8081 }), 'api');
    expect(local.services.get('web-sidecar-proxy')!.service.Port).to.equal(21002);
    local.removeService('web');
    expect(local.services.has('web-sidecar-proxy')).to.equal(false);
  });

  it('keeps a remembered port across a restart and does not hand it to another sidecar', () => {
    const { local } = harness();
    local.sidecarPortHints.set('web-sidecar-proxy', 21004);
    local.sidecarPortHints.set('api-sidecar-proxy', 21000);
    local.addService(
      normalizeServiceRegistration({ Name: 'new', Connect: { SidecarService: {} } }),
      'file',
    );
    local.addService(web(), 'file');
    expect(local.services.get('new-sidecar-proxy')!.service.Port).to.equal(21001);
    expect(local.services.get('web-sidecar-proxy')!.service.Port).to.equal(21004);
  });

  it('refuses a sidecar when no port is left, and changes nothing', () => {
    const { local } = harness();
    for (let p = 21000; p <= 21255; p++) local.addService({ Name: `s${p}`, Port: p }, 'api');
    const before = local.services.size;
    let err: unknown;
    try {
      local.addService(web(), 'api');
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(MeshError);
    expect((err as MeshError).status).to.equal(400);
    expect((err as MeshError).message).to.contain('none is left in the range [21000, 21255]');
    expect(local.services.size).to.equal(before);
  });

  it('puts the service back when its sidecar cannot be added', () => {
    const { local } = harness();
    local.addService(
      normalizeServiceRegistration({ Name: 'web', Port: 8080, Tags: ['old'] }),
      'api',
    );
    expect(() =>
      local.addService(
        web({
          Tags: ['new'],
          Connect: { SidecarService: { Check: { HTTP: 'not a url', Interval: '10s' } } },
        }),
        'api',
      ),
    ).to.throw(MeshError);
    expect(local.services.get('web')!.service.Tags).to.deep.equal(['old']);
    expect(local.services.has('web-sidecar-proxy')).to.equal(false);
  });

  it("mirrors the service's health in the sidecar's alias check", () => {
    const { local, checks } = harness();
    local.addService(web(), 'api');
    const alias = 'service:web-sidecar-proxy:2';
    expect(local.checks.get(alias)!.check).to.deep.include({
      Name: 'Connect Sidecar Aliasing web',
      Type: 'alias',
      ServiceID: 'web-sidecar-proxy',
    });
    expect(statusOf(local, alias)).to.deep.equal(['passing', 'All checks passing.']);
    checks.ttlUpdate('web-ttl', 'critical', 'app down');
    expect(statusOf(local, alias)).to.deep.equal([
      'critical',
      'Aliased check "Service \'web\' check" failing: app down',
    ]);
    checks.ttlUpdate('web-ttl', 'passing', '');
    expect(statusOf(local, alias)![0]).to.equal('passing');
    // Node maintenance counts, as in Consul.
    local.setNodeMaintenance(true, 'patching');
    expect(statusOf(local, alias)![0]).to.equal('critical');
    local.setNodeMaintenance(false, '');
    expect(statusOf(local, alias)![0]).to.equal('passing');
  });

  it('lets the proxy runtime set the listening check of a sidecar with the default checks', () => {
    const { local } = harness();
    local.addService(web(), 'api');
    expect(local.setSidecarListening('web-sidecar-proxy', 'critical', 'no plan yet')).to.equal(
      true,
    );
    expect(local.checks.get('service:web-sidecar-proxy:1')!.check).to.deep.include({
      Name: 'Connect Sidecar Listening',
      Status: 'critical',
      Output: 'no plan yet',
    });
    expect(local.checksOf('web-sidecar-proxy').map((c) => c.CheckID)).to.have.members([
      'service:web-sidecar-proxy:1',
      'service:web-sidecar-proxy:2',
    ]);
    // It survives a re-registration, and goes away with the sidecar.
    local.addService(web({ Tags: ['x'] }), 'api');
    expect(statusOf(local, 'service:web-sidecar-proxy:1')![0]).to.equal('critical');
    expect(local.setSidecarListening('web', 'passing', '')).to.equal(false);
    local.removeService('web');
    expect(local.checks.has('service:web-sidecar-proxy:1')).to.equal(false);
    // A sidecar with its own checks has no defaults to report into.
    local.addService(web({ Connect: { SidecarService: { Check: { TTL: '10s' } } } }), 'api');
    expect(local.setSidecarListening('web-sidecar-proxy', 'passing', '')).to.equal(false);
  });

  it('restores a saved sidecar with its port and default checks', () => {
    const { local } = harness();
    local.addService(web(), 'api');
    const saved = local.services.get('web-sidecar-proxy')!.registration;
    expect(saved).to.not.have.property('Checks');
    const { local: again } = harness();
    again.addService(local.services.get('web')!.registration, 'api');
    again.addService(saved, 'api', true, undefined, { sidecarOf: 'web' });
    expect(again.services.get('web-sidecar-proxy')!.service).to.deep.equal(
      local.services.get('web-sidecar-proxy')!.service,
    );
    expect(statusOf(again, 'service:web-sidecar-proxy:2')![0]).to.equal('passing');
    again.removeService('web');
    expect(again.services.size).to.equal(0);
  });
});
