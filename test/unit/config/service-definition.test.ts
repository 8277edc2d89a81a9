import { expect } from 'chai';
import { normalizeServiceRegistration, type ServiceRegistration } from '../../../src/api/index.js';
import {
  formatDiagnostic,
  parseServiceDefinitions,
  type ServiceDefinitions,
} from '../../../src/config/index.js';
import { MeshError } from '../../../src/core/index.js';

function ok(text: string, file: string): Omit<ServiceDefinitions, 'errors'> {
  const { services, checks, errors } = parseServiceDefinitions(text, file);
  expect(errors.map(formatDiagnostic)).to.deep.equal([]);
  return { services, checks };
}

const WEB_HCL = `
service {
  name = "web"
  id   = "web-1"
  port = 8080
  tags = ["v1", "primary"]
  meta = { version = "1" }
  check {
    id       = "web-http"
    http     = "http://127.0.0.1:8080/health"
    interval = "10s"
    timeout  = "1s"
  }
  connect {
    sidecar_service {
      proxy {
        upstreams = [
          { destination_name = "api", local_bind_port = 9191 }
        ]
      }
    }
  }
}
`;

const WEB: ServiceRegistration = {
  Name: 'web',
  ID: 'web-1',
  Port: 8080,
  Tags: ['v1', 'primary'],
  Meta: { version: '1' },
  Check: {
    CheckID: 'web-http',
    HTTP: 'http://127.0.0.1:8080/health',
    Interval: '10s',
    Timeout: '1s',
  },
  Connect: {
    SidecarService: {
      Name: 'web-sidecar-proxy',
      Proxy: {
        DestinationServiceName: 'web',
        Upstreams: [{ DestinationName: 'api', LocalBindPort: 9191 }],
      },
    },
  },
};

describe('config/service definitions', () => {
  it('decodes the HCL example to a ServiceRegistration', () => {
    expect(ok(WEB_HCL, 'web.hcl')).to.deep.equal({ services: [WEB], checks: [] });
  });

  it('decodes the same definition written as snake_case JSON', () => {
    const json = JSON.stringify({
      service: {
        name: 'web',
        id: 'web-1',
        port: 8080,
        tags: ['v1', 'primary'],
        meta: { version: '1' },
        check: {
          id: 'web-http',
          http: 'http://127.0.0.1:8080/health',
          interval: '10s',
          timeout: '1s',
        },
        connect: {
          sidecar_service: {
            proxy: { upstreams: [{ destination_name: 'api', local_bind_port: 9191 }] },
          },
        },
      },
    });
    expect(ok(json, 'web.json').services).to.deep.equal([WEB]);
  });

  it('decodes PascalCase JSON, as API bodies are written', () => {
    const json = JSON.stringify({
      Service: {
        Name: 'web',
        ID: 'web-1',
        Port: 8080,
        Tags: ['v1', 'primary'],
        Meta: { version: '1' },
        Check: {
          CheckID: 'web-http',
          HTTP: 'http://127.0.0.1:8080/health',
          Interval: '10s',
          Timeout: '1s',
        },
        Connect: {
          SidecarService: {
            Proxy: { Upstreams: [{ DestinationName: 'api', LocalBindPort: 9191 }] },
          },
        },
      },
    });
    expect(ok(json, 'web.json').services).to.deep.equal([WEB]);
  });

  it('detects JSON by content when the name has no known extension', () => {
    expect(ok(`{"service": {"name": "a"}}`, '-').services).to.deep.equal([{ Name: 'a' }]);
    expect(ok(`service { name = "a" }`, '-').services).to.deep.equal([{ Name: 'a' }]);
  });

  it("keeps a service's ACL token (Consul's `token`) beside the registration", () => {
    const s = ok('service {\n  name  = "web"\n  token = "5c1d-secret"\n}\n', 'web.hcl').services[0];
    expect((s as { Token?: string }).Token).to.equal('5c1d-secret');
  });

  it('reads several service blocks and a services list, in file order', () => {
    const hcl =
      'service { name = "a" }\nservice { name = "b" }\nservices = [{ name = "c" }, { name = "d", port = 1 }]\n';
    expect(ok(hcl, 'x.hcl').services.map((s) => s.Name)).to.deep.equal(['a', 'b', 'c', 'd']);
    const json = '{"services": [{"name": "c"}, {"name": "d"}], "service": [{"name": "a"}]}';
    expect(ok(json, 'x.json').services.map((s) => s.Name)).to.deep.equal(['a', 'c', 'd']);
  });

  it('puts several check blocks and a checks list into Checks', () => {
    const hcl = `service {
  name = "db"
  check { tcp = "localhost:5432", interval = "5s" }
  check { ttl = "30s" }
  checks = [{ args = ["/bin/check", "-q"], interval = "1m" }]
}`;
    expect(ok(hcl, 'db.hcl').services[0]).to.deep.equal({
      Name: 'db',
      Checks: [
        { TCP: 'localhost:5432', Interval: '5s' },
        { TTL: '30s' },
        { ScriptArgs: ['/bin/check', '-q'], Interval: '1m' },
      ],
    });
  });

  it('decodes every check key', () => {
    const hcl = `service {
  name = "api"
  check {
    check_id = "api-health"
    name = "API health"
    notes = "checks /health"
    http = "https://localhost:8443/health"
    header = { Authorization = ["Bearer x"], X-Trace = ["1", "2"] }
    method = "POST"
    body = "{}"
    disable_redirects = true
    tls_server_name = "api.local"
    tls_skip_verify = true
    interval = "10s"
    timeout = "2s"
    status = "warning"
    success_before_passing = 2
    failures_before_warning = 1
    failures_before_critical = 3
    deregister_critical_service_after = "90m"
    output_max_size = 8192
  }
  checks = [{ grpc = "localhost:9000/api", grpc_use_tls = true, interval = "1s" },
            { script_args = ["true"], interval = "1s" }]
}`;
    const [svc] = ok(hcl, 'api.hcl').services;
    expect(svc!.Check).to.deep.equal({
      CheckID: 'api-health',
      Name: 'API health',
      Notes: 'checks /health',
      HTTP: 'https://localhost:8443/health',
      Header: { Authorization: ['Bearer x'], 'X-Trace': ['1', '2'] },
      Method: 'POST',
      Body: '{}',
      DisableRedirects: true,
      TLSServerName: 'api.local',
      TLSSkipVerify: true,
      Interval: '10s',
      Timeout: '2s',
      Status: 'warning',
      SuccessBeforePassing: 2,
      FailuresBeforeWarning: 1,
      FailuresBeforeCritical: 3,
      DeregisterCriticalServiceAfter: '90m',
      OutputMaxSize: 8192,
    });
    expect(svc!.Checks).to.deep.equal([
      { GRPC: 'localhost:9000/api', GRPCUseTLS: true, Interval: '1s' },
      { ScriptArgs: ['true'], Interval: '1s' },
    ]);
  });

  it('decodes the remaining service keys', () => {
    const hcl = `service {
  kind = "connect-proxy"
  name = "web-proxy"
  address = "10.0.0.5"
  port = 21000
  enable_tag_override = true
  weights { passing = 10 }
  tagged_addresses {
    lan = { address = "10.0.0.5", port = 21000 }
    wan = { address = "198.51.100.5" }
  }
  proxy {
    destination_service_name = "web"
    destination_service_id = "web-1"
    local_service_address = "127.0.0.1"
    local_service_port = 8080
    mode = "transparent"
    transparent_proxy { outbound_listener_port = 15001, dialed_directly = true }
    config { protocol = "http", envoy_stats_tags = ["a=b"] }
    upstreams = [{
      destination_type = "prepared_query"
      destination_name = "db"
      datacenter = "dc2"
      local_bind_address = "127.0.0.2"
      local_bind_port = 5432
      config = { connect_timeout_ms = 500 }
    }]
  }
}`;
    expect(ok(hcl, 'proxy.hcl').services).to.deep.equal([
      {
        Name: 'web-proxy',
        Kind: 'connect-proxy',
        Address: '10.0.0.5',
        Port: 21000,
        EnableTagOverride: true,
        Weights: { Passing: 10, Warning: 1 },
        TaggedAddresses: {
          lan: { Address: '10.0.0.5', Port: 21000 },
          wan: { Address: '198.51.100.5', Port: 0 },
        },
        Proxy: {
          DestinationServiceName: 'web',
          DestinationServiceID: 'web-1',
          LocalServiceAddress: '127.0.0.1',
          LocalServicePort: 8080,
          Mode: 'transparent',
          TransparentProxy: { OutboundListenerPort: 15001, DialedDirectly: true },
          Config: { protocol: 'http', envoy_stats_tags: ['a=b'] },
          Upstreams: [
            {
              DestinationType: 'prepared_query',
              DestinationName: 'db',
              Datacenter: 'dc2',
              LocalBindAddress: '127.0.0.2',
              LocalBindPort: 5432,
              Config: { connect_timeout_ms: 500 },
            },
          ],
        },
      },
    ]);
  });

  it('keeps a named sidecar with its own port and checks, and connect native', () => {
    const hcl = `service {
  name = "web"
  connect { sidecar_service {
    name = "web-envoy"
    port = 21000
    tags = ["sidecar"]
    check { tcp = "127.0.0.1:21000", interval = "10s" }
  } }
}
service {
  name = "native"
  connect { native = true }
}`;
    expect(ok(hcl, 'x.hcl').services).to.deep.equal([
      {
        Name: 'web',
        Connect: {
          SidecarService: {
            Name: 'web-envoy',
            Port: 21000,
            Tags: ['sidecar'],
            Check: { TCP: '127.0.0.1:21000', Interval: '10s' },
          },
        },
      },
      { Name: 'native', Connect: { Native: true } },
    ]);
  });

  it('decodes top-level checks as CheckRegistrations', () => {
    const hcl = `check {
  id = "mem"
  name = "Memory"
  args = ["/usr/local/bin/check_mem", "-w", "80"]
  interval = "30s"
}
check {
  name = "web alive"
  service_id = "web-1"
  ttl = "15s"
}
checks = [{ check_id = "disk", name = "Disk", tcp = "localhost:22", interval = "1m" }]`;
    expect(ok(hcl, 'checks.hcl')).to.deep.equal({
      services: [],
      checks: [
        {
          ID: 'mem',
          Name: 'Memory',
          ScriptArgs: ['/usr/local/bin/check_mem', '-w', '80'],
          Interval: '30s',
        },
        { Name: 'web alive', ServiceID: 'web-1', TTL: '15s' },
        { ID: 'disk', Name: 'Disk', TCP: 'localhost:22', Interval: '1m' },
      ],
    });
  });

  it('accepts port 0 as unset, an empty file, and comments everywhere', () => {
    expect(ok('# nothing here\n', 'empty.hcl')).to.deep.equal({ services: [], checks: [] });
    expect(ok('{}', 'empty.json')).to.deep.equal({ services: [], checks: [] });
    expect(ok('service { /* c */ name = "a" // c\n port = 0 }', 'x.hcl').services).to.deep.equal([
      { Name: 'a', Port: 0 },
    ]);
  });
});

describe('config/service definitions: transparent_proxy capture settings', () => {
  const TRANSPARENT_HCL = `service {
  name = "web"
  port = 8080
  connect {
    sidecar_service {
      port = 21000
      proxy {
        mode = "transparent"
        transparent_proxy {
          capture_user           = "web-app"
          exclude_inbound_ports  = [9100, 9101]
          exclude_outbound_ports = [5432]
          exclude_outbound_cidrs = ["169.254.0.0/16", "fd00::/8"]
          exclude_uids           = [0, 1005]
          redirect_dns           = true
        }
      }
    }
  }
}
`;

  it('decodes every capture field of a transparent sidecar', () => {
    expect(ok(TRANSPARENT_HCL, 'web.hcl').services).to.deep.equal([
      {
        Name: 'web',
        Port: 8080,
        Connect: {
          SidecarService: {
            Name: 'web-sidecar-proxy',
            Port: 21000,
            Proxy: {
              DestinationServiceName: 'web',
              Mode: 'transparent',
              TransparentProxy: {
                CaptureUser: 'web-app',
                ExcludeInboundPorts: [9100, 9101],
                ExcludeOutboundPorts: [5432],
                ExcludeOutboundCIDRs: ['169.254.0.0/16', 'fd00::/8'],
                ExcludeUIDs: [0, 1005],
                RedirectDNS: true,
              },
            },
          },
        },
      },
    ]);
  });

  it('accepts a numeric uid as the capture user', () => {
    const hcl = TRANSPARENT_HCL.replace('"web-app"', '"65534"');
    const tp = ok(hcl, 'web.hcl').services[0]!.Connect!.SidecarService!.Proxy!.TransparentProxy;
    expect(tp!.CaptureUser).to.equal('65534');
  });

  it('reports a bad capture user and a bad CIDR at file:line:column', () => {
    const hcl = `service {
  name = "web"
  connect { sidecar_service { proxy {
    mode = "transparent"
    transparent_proxy {
      capture_user = "Bad User"
      exclude_outbound_cidrs = ["10.0.0.0/8", "10.0.0.0/33"]
    }
  } } }
}
`;
    const p = 'service.connect.sidecar_service.proxy.transparent_proxy';
    expect(parseServiceDefinitions(hcl, 'web.hcl').errors.map(formatDiagnostic)).to.deep.equal([
      `web.hcl:6:22: ${p}.capture_user: invalid user "Bad User": use a user name (like "web") or a numeric uid`,
      `web.hcl:7:47: ${p}.exclude_outbound_cidrs[1]: invalid CIDR "10.0.0.0/33": use address/prefix, like "10.0.0.0/8" or "fd00::/8"`,
    ]);
  });

  it('decodes capture_cgroup and refuses it next to capture_user or with .. in it', () => {
    const hcl = TRANSPARENT_HCL.replace(
      'capture_user           = "web-app"',
      'capture_cgroup = "system.slice/web.service"',
    );
    const tp = ok(hcl, 'web.hcl').services[0]!.Connect!.SidecarService!.Proxy!.TransparentProxy;
    expect(tp!.CaptureCgroup).to.equal('system.slice/web.service');
    const both = TRANSPARENT_HCL.replace(
      'capture_user           = "web-app"',
      'capture_user = "web-app"\n          capture_cgroup = "system.slice/web.service"',
    );
    const errs = parseServiceDefinitions(both, 'web.hcl').errors.map(formatDiagnostic);
    expect(errs).to.have.length(1);
    expect(errs[0]).to.match(
      /^web\.hcl:\d+:\d+: .*capture_cgroup: set either capture_user or capture_cgroup, not both$/,
    );
    const dots = TRANSPARENT_HCL.replace(
      'capture_user           = "web-app"',
      'capture_cgroup = "system.slice/../x"',
    );
    expect(parseServiceDefinitions(dots, 'web.hcl').errors.map(formatDiagnostic)[0]).to.match(
      /^web\.hcl:\d+:\d+: .*capture_cgroup: invalid cgroup "system.slice\/..\/x"/,
    );
  });

  describe('the API side (normalizeServiceRegistration)', () => {
    function register(tp: Record<string, unknown>): ServiceRegistration {
      return normalizeServiceRegistration({
        Name: 'web-sidecar-proxy',
        Kind: 'connect-proxy',
        Port: 21000,
        Proxy: { DestinationServiceName: 'web', Mode: 'transparent', TransparentProxy: tp },
      });
    }

    function fieldError(tp: Record<string, unknown>): { message: string; field?: string } {
      try {
        register(tp);
      } catch (err) {
        expect(err).to.be.instanceOf(MeshError);
        const e = err as MeshError;
        expect(e.status).to.equal(400);
        return { message: e.message, ...(e.field ? { field: e.field } : {}) };
      }
      throw new Error('expected the registration to be refused');
    }

    it('keeps valid capture settings', () => {
      expect(
        register({
          CaptureUser: 'web-app',
          ExcludeInboundPorts: [9100],
          ExcludeOutboundPorts: [5432],
          ExcludeOutboundCIDRs: ['10.0.0.0/8'],
          ExcludeUIDs: [1005],
          RedirectDNS: true,
        }).Proxy!.TransparentProxy,
      ).to.deep.include({
        CaptureUser: 'web-app',
        ExcludeInboundPorts: [9100],
        ExcludeOutboundPorts: [5432],
        ExcludeOutboundCIDRs: ['10.0.0.0/8'],
        ExcludeUIDs: [1005],
        RedirectDNS: true,
      });
    });

    it('refuses CaptureCgroup next to CaptureUser, and a path with ..', () => {
      expect(fieldError({ CaptureUser: 'web', CaptureCgroup: 'a.slice' }).field).to.equal(
        'Proxy.TransparentProxy.CaptureCgroup',
      );
      expect(fieldError({ CaptureCgroup: 'a/../b' }).message).to.contain('is not a cgroup path');
      expect(
        register({ CaptureCgroup: '/system.slice/web.service' }).Proxy!.TransparentProxy,
      ).to.have.property('CaptureCgroup', 'system.slice/web.service');
    });

    it('refuses a bad CaptureUser, naming the field', () => {
      expect(fieldError({ CaptureUser: 'Bad User' })).to.deep.equal({
        message: 'Proxy.TransparentProxy.CaptureUser: "Bad User" is not a user name or uid',
        field: 'Proxy.TransparentProxy.CaptureUser',
      });
    });

    it('refuses a bad CIDR, naming the field and the element', () => {
      expect(fieldError({ ExcludeOutboundCIDRs: ['10.0.0.0/8', '10.0.0.0/33'] })).to.deep.equal({
        message:
          'Proxy.TransparentProxy.ExcludeOutboundCIDRs[1]: "10.0.0.0/33" is not a CIDR (address/prefix)',
        field: 'Proxy.TransparentProxy.ExcludeOutboundCIDRs',
      });
    });
  });
});
