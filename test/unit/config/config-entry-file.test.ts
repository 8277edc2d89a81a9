import { expect } from 'chai';
import {
  formatDiagnostic,
  parseConfigEntryFile,
  type ConfigEntry,
} from '../../../src/config/index.js';

function entryOf(text: string, file = 'entry.hcl'): ConfigEntry {
  const { entry, errors } = parseConfigEntryFile(text, file);
  expect(errors.map(formatDiagnostic)).to.deep.equal([]);
  if (!entry) throw new Error('no entry');
  return entry;
}

function errorsOf(text: string, file = 'entry.hcl'): string[] {
  const { entry, errors } = parseConfigEntryFile(text, file);
  expect(entry).to.equal(undefined);
  return errors.map(formatDiagnostic);
}

const lines = (...ls: string[]): string => ls.join('\n') + '\n';

describe('config/config-entry-file', () => {
  describe('reads the Consul documentation examples', () => {
    it('service-splitter, with lists of inline objects', () => {
      const text = lines(
        'Kind = "service-splitter"',
        'Name = "web"',
        'Splits = [ { Weight = 90, ServiceSubset = "v1" }, { Weight = 10, ServiceSubset = "v2" } ]',
      );
      expect(entryOf(text)).to.deep.equal({
        Kind: 'service-splitter',
        Name: 'web',
        Splits: [
          { Weight: 90, ServiceSubset: 'v1' },
          { Weight: 10, ServiceSubset: 'v2' },
        ],
      });
    });

    it('service-splitter with header blocks', () => {
      const text = lines(
        'Kind = "service-splitter"',
        'Name = "web"',
        'Splits = [',
        '  {',
        '    Weight        = 50',
        '    Service       = "web"',
        '    ServiceSubset = "v1"',
        '    RequestHeaders {',
        '      Set {',
        '        "x-web-version" = "from-v1"',
        '      }',
        '    }',
        '  },',
        '  {',
        '    Weight        = 50',
        '    Service       = "web"',
        '    ServiceSubset = "v2"',
        '  },',
        ']',
      );
      expect(entryOf(text)).to.deep.equal({
        Kind: 'service-splitter',
        Name: 'web',
        Splits: [
          {
            Weight: 50,
            Service: 'web',
            ServiceSubset: 'v1',
            RequestHeaders: { Set: { 'x-web-version': 'from-v1' } },
          },
          { Weight: 50, Service: 'web', ServiceSubset: 'v2' },
        ],
      });
    });

    it('service-defaults in snake_case', () => {
      expect(
        entryOf(lines('kind = "service-defaults"', 'name = "web"', 'protocol = "http"')),
      ).to.deep.equal({ Kind: 'service-defaults', Name: 'web', Protocol: 'http' });
    });

    it('service-defaults with upstream config', () => {
      const text = lines(
        'Kind = "service-defaults"',
        'Name = "dashboard"',
        'UpstreamConfig = {',
        '  Defaults = {',
        '    MeshGateway = {',
        '      Mode = "local"',
        '    }',
        '    Limits = {',
        '      MaxConnections = 512',
        '      MaxPendingRequests = 512',
        '      MaxConcurrentRequests = 512',
        '    }',
        '  }',
        '  Overrides = [',
        '    {',
        '      Name = "counting"',
        '      MeshGateway = {',
        '        Mode = "remote"',
        '      }',
        '    }',
        '  ]',
        '}',
      );
      expect(entryOf(text)).to.deep.equal({
        Kind: 'service-defaults',
        Name: 'dashboard',
        UpstreamConfig: {
          Defaults: {
            MeshGateway: { Mode: 'local' },
            Limits: { MaxConnections: 512, MaxPendingRequests: 512, MaxConcurrentRequests: 512 },
          },
          Overrides: [{ Name: 'counting', MeshGateway: { Mode: 'remote' } }],
        },
      });
    });

    it('proxy-defaults with a Config block', () => {
      const text = lines(
        'Kind      = "proxy-defaults"',
        'Name      = "global"',
        'Config {',
        '  protocol                   = "http"',
        '  envoy_prometheus_bind_addr = "0.0.0.0:9102"',
        '}',
      );
      expect(entryOf(text)).to.deep.equal({
        Kind: 'proxy-defaults',
        Name: 'global',
        Config: { protocol: 'http', envoy_prometheus_bind_addr: '0.0.0.0:9102' },
      });
    });

    it('service-router with nested blocks and comments', () => {
      const text = lines(
        'Kind = "service-router"',
        'Name = "web"',
        'Routes = [',
        '  {',
        '    Match {',
        '      HTTP {',
        '        PathPrefix = "/admin"',
        '      }',
        '    }',
        '',
        '    Destination {',
        '      Service = "admin"',
        '    }',
        '  },',
        '  {',
        '    Match {',
        '      HTTP {',
        '        Header = [',
        '          {',
        '            Name  = "x-debug"',
        '            Exact = "1"',
        '          },',
        '        ]',
        '      }',
        '    }',
        '    Destination {',
        '      Service       = "web"',
        '      ServiceSubset = "canary"',
        '    }',
        '  },',
        '  # NOTE: a default catch-all will send unmatched traffic to "web"',
        ']',
      );
      expect(entryOf(text)).to.deep.equal({
        Kind: 'service-router',
        Name: 'web',
        Routes: [
          { Match: { HTTP: { PathPrefix: '/admin' } }, Destination: { Service: 'admin' } },
          {
            Match: { HTTP: { Header: [{ Name: 'x-debug', Exact: '1' }] } },
            Destination: { Service: 'web', ServiceSubset: 'canary' },
          },
        ],
      });
    });

    it('service-resolver with subsets and failover', () => {
      const text = lines(
        'Kind           = "service-resolver"',
        'Name           = "web"',
        'DefaultSubset  = "v1"',
        'ConnectTimeout = "15s"',
        'Subsets = {',
        '  v1 = {',
        '    Filter = "Service.Meta.version == v1"',
        '  }',
        '  v2 = {',
        '    Filter = "Service.Meta.version == v2"',
        '  }',
        '}',
        'Failover = {',
        '  v2 = {',
        '    Datacenters = ["dc2"]',
        '  }',
        '  "*" = {',
        '    Datacenters = ["dc3", "dc4"]',
        '  }',
        '}',
      );
      expect(entryOf(text)).to.deep.equal({
        Kind: 'service-resolver',
        Name: 'web',
        DefaultSubset: 'v1',
        ConnectTimeout: '15s',
        Subsets: {
          v1: { Filter: 'Service.Meta.version == v1' },
          v2: { Filter: 'Service.Meta.version == v2' },
        },
        Failover: { v2: { Datacenters: ['dc2'] }, '*': { Datacenters: ['dc3', 'dc4'] } },
      });
    });

    it('service-resolver in JSON', () => {
      const text = JSON.stringify(
        {
          Kind: 'service-resolver',
          Name: 'web',
          LoadBalancer: {
            Policy: 'maglev',
            HashPolicies: [{ Field: 'header', FieldValue: 'x-user-id' }],
          },
        },
        null,
        2,
      );
      expect(entryOf(text, 'web.json')).to.deep.equal({
        Kind: 'service-resolver',
        Name: 'web',
        LoadBalancer: {
          Policy: 'maglev',
          HashPolicies: [{ Field: 'header', FieldValue: 'x-user-id' }],
        },
      });
    });

    it('service-intentions with L4 and L7 sources', () => {
      const text = lines(
        'Kind = "service-intentions"',
        'Name = "api"',
        'Sources = [',
        '  {',
        '    Name   = "web"',
        '    Action = "allow"',
        '  },',
        '  {',
        '    Name = "admin-dashboard"',
        '    Permissions = [',
        '      {',
        '        Action = "allow"',
        '        HTTP {',
        '          PathPrefix = "/admin"',
        '          Methods    = ["GET", "POST"]',
        '        }',
        '      },',
        '      {',
        '        Action = "deny"',
        '        HTTP {',
        '          PathPrefix = "/"',
        '          Header = [',
        '            {',
        '              Name    = "x-debug"',
        '              Present = true',
        '            }',
        '          ]',
        '        }',
        '      }',
        '    ]',
        '  }',
        '  # NOTE: a default catch-all based on the default ACL policy will apply to',
        '  # unmatched connections and requests. Typically this will be DENY.',
        ']',
      );
      expect(entryOf(text)).to.deep.equal({
        Kind: 'service-intentions',
        Name: 'api',
        Sources: [
          { Name: 'web', Action: 'allow', Type: 'consul' },
          {
            Name: 'admin-dashboard',
            Permissions: [
              { Action: 'allow', HTTP: { PathPrefix: '/admin', Methods: ['GET', 'POST'] } },
              {
                Action: 'deny',
                HTTP: { PathPrefix: '/', Header: [{ Name: 'x-debug', Present: true }] },
              },
            ],
            Type: 'consul',
          },
        ],
      });
    });

    it('service-intentions in JSON with snake_case keys', () => {
      const text = JSON.stringify({
        kind: 'service-intentions',
        name: 'db',
        sources: [{ name: 'web', action: 'deny', description: 'no direct access' }],
      });
      expect(entryOf(text, 'db.json')).to.deep.equal({
        Kind: 'service-intentions',
        Name: 'db',
        Sources: [{ Name: 'web', Action: 'deny', Type: 'consul', Description: 'no direct access' }],
      });
    });
  });

  describe('HCL block forms', () => {
    it('gathers repeated blocks into a list', () => {
      const text = lines(
        'Kind = "service-router"',
        'Name = "web"',
        'Routes {',
        '  Match {',
        '    HTTP {',
        '      Header {',
        '        Name  = "x-a"',
        '        Exact = "1"',
        '      }',
        '      Header {',
        '        Name    = "x-b"',
        '        Present = true',
        '      }',
        '    }',
        '  }',
        '}',
      );
      expect(entryOf(text)).to.deep.equal({
        Kind: 'service-router',
        Name: 'web',
        Routes: [
          {
            Match: {
              HTTP: {
                Header: [
                  { Name: 'x-a', Exact: '1' },
                  { Name: 'x-b', Present: true },
                ],
              },
            },
          },
        ],
      });
    });

    it('reads labeled blocks as map keys', () => {
      const text = lines(
        'Kind = "service-resolver"',
        'Name = "web"',
        'Subsets "v1" { Filter = "Service.Meta.version == v1" }',
        'Subsets "v2" { OnlyPassing = true }',
      );
      expect(entryOf(text)).to.deep.equal({
        Kind: 'service-resolver',
        Name: 'web',
        Subsets: { v1: { Filter: 'Service.Meta.version == v1' }, v2: { OnlyPassing: true } },
      });
    });
  });

  describe('errors, at the offending field', () => {
    const cases: [string, string, string, string[]][] = [
      [
        'a weight finer than 0.01',
        'web.hcl',
        lines(
          'Kind = "service-splitter"',
          'Name = "web"',
          'Splits = [',
          '  { Weight = 90, ServiceSubset = "v1" },',
          '  { Weight = 33.333, ServiceSubset = "v2" },',
          ']',
        ),
        [
          'web.hcl:5:5: Splits[1].Weight: 33.333 has more than two decimal places (weights go in steps of 0.01)',
        ],
      ],
      [
        'weights that do not sum to 100',
        'web.hcl',
        lines(
          'Kind = "service-splitter"',
          'Name = "web"',
          '',
          'Splits = [',
          '  { Weight = 90, ServiceSubset = "v1" },',
          '  { Weight = 9.9, ServiceSubset = "v2" },',
          ']',
        ),
        ['web.hcl:4:1: Splits: weights sum to 99.9, must sum to 100'],
      ],
      [
        'a bad value, named in the file spelling',
        'web.hcl',
        lines('kind = "service-defaults"', 'name = "web"', 'protocol = "udp"'),
        ['web.hcl:3:1: protocol: must be "tcp", "http", "http2" or "grpc", not "udp"'],
      ],
      [
        'a missing name',
        'web.hcl',
        lines('Kind = "service-defaults"', 'Protocol = "http"'),
        ['web.hcl:1:1: Name: missing (required)'],
      ],
      [
        'an unknown kind',
        'web.hcl',
        lines('Name = "web"', 'Kind = "service-default"'),
        [
          'web.hcl:2:1: Kind: unknown config entry kind "service-default"; did you mean "service-defaults"? valid kinds: service-defaults, proxy-defaults, service-router, service-splitter, service-resolver, service-intentions',
        ],
      ],
      [
        'an unknown nested key, with did-you-mean',
        'web.hcl',
        lines(
          'Kind = "service-router"',
          'Name = "web"',
          'Routes = [',
          '  {',
          '    Destination {',
          '      Service = "admin"',
          '      NumRetrys = 3',
          '    }',
          '  }',
          ']',
        ),
        ['web.hcl:7:7: Routes[0].Destination.NumRetrys: unknown field; did you mean "NumRetries"?'],
      ],
      [
        'two path matchers, at the HTTP block',
        'web.hcl',
        lines(
          'Kind = "service-router"',
          'Name = "web"',
          'Routes = [',
          '  {',
          '    Match {',
          '      HTTP {',
          '        PathExact  = "/a"',
          '        PathPrefix = "/b"',
          '      }',
          '    }',
          '  }',
          ']',
        ),
        [
          'web.hcl:6:7: Routes[0].Match.HTTP: set at most one of PathExact, PathPrefix or PathRegex (found PathExact and PathPrefix)',
        ],
      ],
      [
        'a bad subset filter, at its Filter key',
        'web.hcl',
        lines(
          'Kind = "service-resolver"',
          'Name = "web"',
          'Subsets = {',
          '  v1 = {',
          '    Filter = "Service.Meta.version =="',
          '  }',
          '}',
        ),
        [
          `web.hcl:5:5: Subsets["v1"].Filter: bad filter for subset "v1": invalid filter expression at position 24: expected a value after '==', found the end of the expression`,
        ],
      ],
      [
        'a failover key that is not a subset',
        'web.hcl',
        lines(
          'Kind = "service-resolver"',
          'Name = "web"',
          'Failover = {',
          '  "*" = { Datacenters = ["dc3"] }',
          '  v2 = { Datacenters = ["dc2"] }',
          '}',
        ),
        [
          'web.hcl:5:3: Failover["v2"]: there is no subset "v2" to fail over from; use "*" or one of the Subsets (there are none)',
        ],
      ],
      [
        'a source with both Action and Permissions, at the list item',
        'api.hcl',
        lines(
          'Kind = "service-intentions"',
          'Name = "api"',
          'Sources = [',
          '  {',
          '    Name   = "web"',
          '    Action = "allow"',
          '    Permissions = [ { Action = "deny", HTTP { PathPrefix = "/" } } ]',
          '  },',
          ']',
        ),
        ['api.hcl:4:3: Sources[0]: Action and Permissions are mutually exclusive'],
      ],
      [
        'a missing nested field, at the enclosing item',
        'api.hcl',
        lines(
          'Kind = "service-intentions"',
          'Name = "api"',
          'Sources = [',
          '  { Action = "allow" },',
          ']',
        ),
        ['api.hcl:4:3: Sources[0].Name: missing (required)'],
      ],
      [
        'a JSON field deep in a list',
        'web.json',
        [
          '{',
          '  "Kind": "service-router",',
          '  "Name": "web",',
          '  "Routes": [',
          '    { "Destination": { "Service": "api" } },',
          '    { "Destination": { "Service": "api", "RetryOn": ["5xx", "timeout"] } }',
          '  ]',
          '}',
        ].join('\n'),
        [
          'web.json:6:61: Routes[1].Destination.RetryOn[1]: "timeout" is not a retry condition (5xx, gateway-error, reset, connect-failure, envoy-ratelimited, retriable-4xx, refused-stream, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable)',
        ],
      ],
      [
        'proxy-defaults named web',
        'global.json',
        '{"Kind": "proxy-defaults", "Name": "web"}',
        ['global.json:1:28: Name: proxy-defaults must be named "global", not "web"'],
      ],
      [
        'an HCL attribute set twice',
        'web.hcl',
        lines(
          'Kind = "service-defaults"',
          'Name = "web"',
          'Protocol = "http"',
          'Protocol = "grpc"',
        ),
        ['web.hcl:4:1: Protocol: duplicate key (first set at 3:1)'],
      ],
      [
        'a syntax error',
        'web.hcl',
        lines('Kind = "service-defaults"', 'Name = web'),
        ['web.hcl:2:8: unquoted word web: strings must be in double quotes'],
      ],
      [
        'a JSON document that is not an object',
        'web.json',
        '[{"Kind": "service-defaults", "Name": "web"}]',
        ['web.json:1:1: a config entry file holds one object with Kind and Name'],
      ],
    ];
    for (const [description, file, text, expected] of cases) {
      it(`reports ${description}`, () => {
        expect(errorsOf(text, file)).to.deep.equal(expected);
      });
    }
  });
});
