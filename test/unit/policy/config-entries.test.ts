import { expect } from 'chai';
import type { ConfigEntry as ApiConfigEntry } from '../../../src/api/index.js';
import { isMeshError } from '../../../src/core/index.js';
import {
  CONFIG_ENTRY_KINDS,
  normalizeConfigEntry,
  serviceProtocol,
  validateConfigDelete,
  validateConfigGraph,
  type ConfigEntry,
  type ConfigEntryKind,
  type ConfigEntryView,
} from '../../../src/config/index.js';
import { validateRule, type IntentionRule } from '../../../src/policy/index.js';

/** The error normalizeConfigEntry throws, as [field, message]. */
function rejection(body: unknown): [string | undefined, string] {
  try {
    normalizeConfigEntry(body);
  } catch (err) {
    if (!isMeshError(err)) throw err;
    expect(err.status).to.equal(400);
    return [err.field, err.message];
  }
  throw new Error(`accepted: ${JSON.stringify(body)}`);
}

type Invalid = [description: string, body: Record<string, unknown>, field: string, message: string];

function rejects(cases: Invalid[]): void {
  for (const [description, body, field, message] of cases) {
    it(`rejects ${description}`, () => {
      expect(rejection(body)).to.deep.equal([field, message]);
    });
  }
}

const VALID_KINDS = `valid kinds: ${CONFIG_ENTRY_KINDS.join(', ')}`;

describe('config entries: normalizeConfigEntry', () => {
  describe('any kind', () => {
    it('lists the six kinds', () => {
      expect(CONFIG_ENTRY_KINDS).to.deep.equal([
        'service-defaults',
        'proxy-defaults',
        'service-router',
        'service-splitter',
        'service-resolver',
        'service-intentions',
      ]);
    });

    it('accepts snake_case and lower-case keys and answers in CamelCase', () => {
      expect(
        normalizeConfigEntry({
          kind: 'service-resolver',
          name: 'web',
          default_subset: 'v1',
          subsets: { v1: { filter: 'Service.Meta.version == v1', only_passing: true } },
          connect_timeout: '5s',
          meta: { owner: 'team-a' },
        }),
      ).to.deep.equal({
        Kind: 'service-resolver',
        Name: 'web',
        Meta: { owner: 'team-a' },
        DefaultSubset: 'v1',
        Subsets: { v1: { Filter: 'Service.Meta.version == v1', OnlyPassing: true } },
        ConnectTimeout: '5s',
      });
    });

    it('drops read-only fields and accepts the default namespace and partition', () => {
      expect(
        normalizeConfigEntry({
          Kind: 'service-defaults',
          Name: 'web',
          Protocol: 'HTTP',
          Namespace: 'default',
          Partition: '',
          CreateIndex: 10,
          ModifyIndex: 12,
        }),
      ).to.deep.equal({ Kind: 'service-defaults', Name: 'web', Protocol: 'http' });
    });

    it('treats null and Go zero values of unsupported fields as unset', () => {
      expect(
        normalizeConfigEntry({
          Kind: 'service-defaults',
          Name: 'web',
          EnvoyExtensions: [],
          ExternalSNI: '',
          Destination: null,
          Mode: null,
        }),
      ).to.deep.equal({ Kind: 'service-defaults', Name: 'web' });
    });

    it('keeps user-chosen keys verbatim, even "__proto__"', () => {
      const e = normalizeConfigEntry(
        JSON.parse('{"Kind":"proxy-defaults","Name":"global","Config":{"__proto__":{"x":1}}}'),
      );
      expect(Object.keys((e as { Config: object }).Config)).to.deep.equal(['__proto__']);
      expect(Object.getPrototypeOf((e as { Config: object }).Config)).to.equal(Object.prototype);
    });

    rejects([
      [
        'an unknown kind',
        { Kind: 'x', Name: 'web' },
        'Kind',
        `Kind: unknown config entry kind "x"; ${VALID_KINDS}`,
      ],
      [
        'a misspelled kind with a hint',
        { Kind: 'service-default', Name: 'web' },
        'Kind',
        `Kind: unknown config entry kind "service-default"; did you mean "service-defaults"? ${VALID_KINDS}`,
      ],
      [
        'a Consul kind Trellis does not serve',
        { Kind: 'ingress-gateway', Name: 'gw' },
        'Kind',
        `Kind: config entry kind "ingress-gateway" is not supported by Trellis; ${VALID_KINDS}`,
      ],
      ['a missing kind', { Name: 'web' }, 'Kind', `Kind: missing (required); ${VALID_KINDS}`],
      ['a missing name', { Kind: 'service-defaults' }, 'Name', 'Name: missing (required)'],
      [
        'an unknown field, with did-you-mean',
        { Kind: 'service-defaults', Name: 'web', Protocl: 'http' },
        'Protocl',
        'Protocl: unknown field; did you mean "Protocol"?',
      ],
      [
        'an unknown nested field, with did-you-mean',
        { Kind: 'service-router', Name: 'web', Routes: [{ Destination: { Servce: 'api' } }] },
        'Routes[0].Destination.Servce',
        'Routes[0].Destination.Servce: unknown field; did you mean "Service"?',
      ],
      [
        'a field given twice in two spellings',
        { Kind: 'service-defaults', Name: 'web', Protocol: 'http', protocol: 'tcp' },
        'Protocol',
        'Protocol: set twice, as "Protocol" and as "protocol"',
      ],
      [
        'a wrong type',
        { Kind: 'service-defaults', Name: 'web', MaxInboundConnections: 'many' },
        'MaxInboundConnections',
        'MaxInboundConnections: must be an integer',
      ],
      [
        'a name with ".."',
        { Kind: 'service-defaults', Name: '..' },
        'Name',
        `Name: ".." is not a valid service name (1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit and not ending in '.' or '-')`,
      ],
      [
        'a name with a slash',
        { Kind: 'service-router', Name: 'a/b' },
        'Name',
        `Name: "a/b" is not a valid service name (1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit and not ending in '.' or '-')`,
      ],
      [
        'a name with a space',
        { Kind: 'service-resolver', Name: 'a b' },
        'Name',
        `Name: "a b" is not a valid service name (1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit and not ending in '.' or '-')`,
      ],
      [
        'a wildcard name outside intentions',
        { Kind: 'service-defaults', Name: '*' },
        'Name',
        `Name: "*" is not a valid service name (1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit and not ending in '.' or '-')`,
      ],
      [
        'a non-default namespace',
        { Kind: 'service-defaults', Name: 'web', Namespace: 'team-a' },
        'Namespace',
        'Namespace: Trellis has only the "default" namespace, not "team-a"',
      ],
      [
        'a meta value that is not a string',
        { Kind: 'service-defaults', Name: 'web', Meta: { a: { b: 1 } } },
        'Meta["a"]',
        'Meta["a"]: must be a string',
      ],
    ]);

    it('rejects a body that is not an object', () => {
      for (const body of [null, 'x', 1, []]) {
        expect(rejection(body)).to.deep.equal([
          undefined,
          'config entry must be a JSON object with Kind and Name',
        ]);
      }
    });
  });

  describe('service-defaults', () => {
    it('accepts the Consul documentation examples', () => {
      expect(
        normalizeConfigEntry({ Kind: 'service-defaults', Name: 'counting', Protocol: 'http' }),
      ).to.deep.equal({ Kind: 'service-defaults', Name: 'counting', Protocol: 'http' });
      const upstreams = {
        Kind: 'service-defaults',
        Name: 'dashboard',
        UpstreamConfig: {
          Defaults: {
            MeshGateway: { Mode: 'local' },
            Limits: { MaxConnections: 512, MaxPendingRequests: 512, MaxConcurrentRequests: 512 },
          },
          Overrides: [{ Name: 'counting', MeshGateway: { Mode: 'remote' } }],
        },
      };
      expect(normalizeConfigEntry(upstreams)).to.deep.equal(upstreams);
      const tproxy = {
        Kind: 'service-defaults',
        Name: 'web',
        Protocol: 'grpc',
        Mode: 'transparent',
        TransparentProxy: { OutboundListenerPort: 15001, DialedDirectly: true },
        MutualTLSMode: 'strict',
        MaxInboundConnections: 100,
        LocalConnectTimeoutMs: 1000,
        LocalRequestTimeoutMs: 2000,
        BalanceInboundConnections: 'exact_balance',
        Expose: {
          Checks: true,
          Paths: [{ Path: '/metrics', LocalPathPort: 8080, ListenerPort: 21500, Protocol: 'http' }],
        },
      };
      expect(normalizeConfigEntry(tproxy)).to.deep.equal(tproxy);
    });

    it('accepts passive health checks and outbound balancing on upstreams', () => {
      const e = {
        Kind: 'service-defaults',
        Name: 'web',
        UpstreamConfig: {
          Overrides: [
            {
              Name: 'api',
              Protocol: 'http',
              ConnectTimeoutMs: 500,
              PassiveHealthCheck: {
                Interval: '10s',
                MaxFailures: 5,
                EnforcingConsecutive5xx: 100,
                MaxEjectionPercent: 50,
                BaseEjectionTime: '30s',
              },
              BalanceOutboundConnections: 'exact_balance',
            },
          ],
        },
      };
      expect(normalizeConfigEntry(e)).to.deep.equal(e);
    });

    const sd = (extra: Record<string, unknown>): Record<string, unknown> => ({
      Kind: 'service-defaults',
      Name: 'web',
      ...extra,
    });
    rejects([
      [
        'an unknown protocol',
        sd({ Protocol: 'udp' }),
        'Protocol',
        'Protocol: must be "tcp", "http", "http2" or "grpc", not "udp"',
      ],
      [
        'an unknown mode',
        sd({ Mode: 'sidecar' }),
        'Mode',
        'Mode: must be "direct" or "transparent", not "sidecar"',
      ],
      [
        'an unknown MutualTLSMode',
        sd({ MutualTLSMode: 'off' }),
        'MutualTLSMode',
        'MutualTLSMode: must be "strict" or "permissive", not "off"',
      ],
      [
        'a negative limit',
        sd({ UpstreamConfig: { Defaults: { Limits: { MaxConnections: -1 } } } }),
        'UpstreamConfig.Defaults.Limits.MaxConnections',
        'UpstreamConfig.Defaults.Limits.MaxConnections: must be 0 or more, not -1',
      ],
      [
        'a negative local timeout',
        sd({ LocalRequestTimeoutMs: -5 }),
        'LocalRequestTimeoutMs',
        'LocalRequestTimeoutMs: must be 0 or more, not -5',
      ],
      [
        'an override without a name',
        sd({ UpstreamConfig: { Overrides: [{ Protocol: 'http' }] } }),
        'UpstreamConfig.Overrides[0].Name',
        'UpstreamConfig.Overrides[0].Name: missing (required)',
      ],
      [
        'the same upstream overridden twice',
        sd({ UpstreamConfig: { Overrides: [{ Name: 'db' }, { Name: 'db' }] } }),
        'UpstreamConfig.Overrides[1].Name',
        'UpstreamConfig.Overrides[1].Name: "db" is already overridden in Overrides[0]',
      ],
      [
        'a name in upstream Defaults',
        sd({ UpstreamConfig: { Defaults: { Name: 'db' } } }),
        'UpstreamConfig.Defaults.Name',
        'UpstreamConfig.Defaults.Name: not allowed in Defaults, which apply to every upstream',
      ],
      [
        'a bad passive health check interval',
        sd({ UpstreamConfig: { Defaults: { PassiveHealthCheck: { Interval: '-1s' } } } }),
        'UpstreamConfig.Defaults.PassiveHealthCheck.Interval',
        'UpstreamConfig.Defaults.PassiveHealthCheck.Interval: "-1s" is not a duration (e.g. "10s", "1m30s", "500ms")',
      ],
      [
        'EnvoyExtensions',
        sd({ EnvoyExtensions: [{ Name: 'builtin/lua' }] }),
        'EnvoyExtensions',
        'EnvoyExtensions: not supported by Trellis (it configures Envoy, and Trellis proxies are not Envoy)',
      ],
      [
        'EnvoyListenerJSON on an upstream',
        sd({ UpstreamConfig: { Overrides: [{ Name: 'db', EnvoyListenerJSON: '{}' }] } }),
        'UpstreamConfig.Overrides[0].EnvoyListenerJSON',
        'UpstreamConfig.Overrides[0].EnvoyListenerJSON: not supported by Trellis (it configures Envoy, and Trellis proxies are not Envoy)',
      ],
      [
        'a peer upstream',
        sd({ UpstreamConfig: { Overrides: [{ Name: 'db', Peer: 'other' }] } }),
        'UpstreamConfig.Overrides[0].Peer',
        'UpstreamConfig.Overrides[0].Peer: not supported by Trellis (cluster peering needs mesh gateways)',
      ],
      [
        'a terminating-gateway destination',
        sd({ Destination: { Addresses: ['example.com'], Port: 443 } }),
        'Destination',
        'Destination: not supported by Trellis (it routes through terminating gateways)',
      ],
      [
        'an expose path not starting with /',
        sd({ Expose: { Paths: [{ Path: 'metrics', LocalPathPort: 8080 }] } }),
        'Expose.Paths[0].Path',
        'Expose.Paths[0].Path: must begin with "/", not "metrics"',
      ],
      [
        'a bad mesh gateway mode',
        sd({ MeshGateway: { Mode: 'far' } }),
        'MeshGateway.Mode',
        'MeshGateway.Mode: must be "none", "local" or "remote", not "far"',
      ],
    ]);
  });

  describe('proxy-defaults', () => {
    it('accepts the Consul documentation examples', () => {
      const timeouts = {
        Kind: 'proxy-defaults',
        Name: 'global',
        Config: { local_connect_timeout_ms: 1000, handshake_timeout_ms: 10000 },
      };
      expect(normalizeConfigEntry(timeouts)).to.deep.equal(timeouts);
      const http = {
        Kind: 'proxy-defaults',
        Name: 'global',
        Config: { protocol: 'http', envoy_prometheus_bind_addr: '0.0.0.0:9102' },
        Mode: 'transparent',
        TransparentProxy: { OutboundListenerPort: 15001 },
        MutualTLSMode: 'permissive',
        MeshGateway: { Mode: 'local' },
        AccessLogs: { Enabled: true, Type: 'file', Path: '/var/log/envoy/access-logs.txt' },
      };
      expect(normalizeConfigEntry(http)).to.deep.equal(http);
      const json = {
        Kind: 'proxy-defaults',
        Name: 'global',
        AccessLogs: { Enabled: true, JSONFormat: '{"start_time": "%START_TIME%"}' },
      };
      expect(normalizeConfigEntry(json)).to.deep.equal(json);
    });

    const pd = (extra: Record<string, unknown>): Record<string, unknown> => ({
      Kind: 'proxy-defaults',
      Name: 'global',
      ...extra,
    });
    rejects([
      [
        'a name other than global',
        { Kind: 'proxy-defaults', Name: 'web' },
        'Name',
        'Name: proxy-defaults must be named "global", not "web"',
      ],
      [
        'a bad Config.protocol',
        pd({ Config: { protocol: 'udp' } }),
        'Config.protocol',
        'Config.protocol: must be "tcp", "http", "http2" or "grpc", not "udp"',
      ],
      [
        'a Config.protocol that is not a string',
        pd({ Config: { Protocol: 1 } }),
        'Config.Protocol',
        'Config.Protocol: must be a string',
      ],
      [
        'a Config that is not an object',
        pd({ Config: 'protocol=http' }),
        'Config',
        'Config: must be an object',
      ],
      [
        'a file access log without a path',
        pd({ AccessLogs: { Enabled: true, Type: 'file' } }),
        'AccessLogs.Path',
        'AccessLogs.Path: required when Type is "file"',
      ],
      [
        'an access log path without Type file',
        pd({ AccessLogs: { Type: 'stdout', Path: '/tmp/x' } }),
        'AccessLogs.Path',
        'AccessLogs.Path: only allowed when Type is "file"',
      ],
      [
        'both JSON and text log formats',
        pd({ AccessLogs: { JSONFormat: '{}', TextFormat: '%START_TIME%' } }),
        'AccessLogs',
        'AccessLogs: JSONFormat and TextFormat are mutually exclusive',
      ],
      [
        'a JSON log format that is not JSON',
        pd({ AccessLogs: { JSONFormat: '{start' } }),
        'AccessLogs.JSONFormat',
        'AccessLogs.JSONFormat: must be a JSON object of log fields',
      ],
      [
        'EnvoyExtensions',
        pd({ EnvoyExtensions: [{ Name: 'builtin/aws/lambda' }] }),
        'EnvoyExtensions',
        'EnvoyExtensions: not supported by Trellis (it configures Envoy, and Trellis proxies are not Envoy)',
      ],
      [
        'a failover policy',
        pd({ FailoverPolicy: { Mode: 'order-by-locality' } }),
        'FailoverPolicy',
        'FailoverPolicy: not supported by Trellis (it is a Consul Enterprise feature)',
      ],
    ]);
  });

  describe('service-router', () => {
    it('accepts the Consul documentation examples', () => {
      const prefix = {
        Kind: 'service-router',
        Name: 'web',
        Routes: [{ Match: { HTTP: { PathPrefix: '/admin' } }, Destination: { Service: 'admin' } }],
      };
      expect(normalizeConfigEntry(prefix)).to.deep.equal(prefix);
      const canary = {
        Kind: 'service-router',
        Name: 'web',
        Routes: [
          {
            Match: { HTTP: { Header: [{ Name: 'x-debug', Exact: '1' }] } },
            Destination: { Service: 'web', ServiceSubset: 'canary' },
          },
          {
            Match: { HTTP: { QueryParam: [{ Name: 'x-debug', Exact: '1' }] } },
            Destination: { Service: 'web', ServiceSubset: 'canary' },
          },
        ],
      };
      expect(normalizeConfigEntry(canary)).to.deep.equal(canary);
      const grpc = {
        Kind: 'service-router',
        Name: 'billing',
        Routes: [
          {
            Match: { HTTP: { PathExact: '/mycompany.BillingService/GenerateInvoice' } },
            Destination: { Service: 'invoice-generator' },
          },
        ],
      };
      expect(normalizeConfigEntry(grpc)).to.deep.equal(grpc);
    });

    it('accepts every destination setting', () => {
      const e = {
        Kind: 'service-router',
        Name: 'web',
        Routes: [
          {
            Match: {
              HTTP: {
                PathRegex: '^/api/v[0-9]+/',
                Methods: ['GET', 'HEAD'],
                Header: [
                  { Name: 'x-canary', Present: true, Invert: true },
                  { Name: 'user-agent', Regex: '.*curl.*' },
                  { Name: 'x-a', Prefix: 'p' },
                  { Name: 'x-b', Suffix: 's' },
                ],
                QueryParam: [
                  { Name: 'debug', Present: true },
                  { Name: 'v', Regex: '[0-9]+' },
                ],
              },
            },
            Destination: {
              Service: 'api',
              RequestTimeout: '5s',
              IdleTimeout: '1m',
              NumRetries: 3,
              RetryOnConnectFailure: true,
              RetryOnStatusCodes: [503, 429],
              RetryOn: ['5xx', 'reset', 'retriable-4xx'],
              RequestHeaders: { Add: { 'x-a': '1' }, Set: { 'x-b': '2' }, Remove: ['x-c'] },
              ResponseHeaders: { Remove: ['server'] },
            },
          },
          {
            Match: { HTTP: { PathPrefix: '/v2/' } },
            Destination: { PrefixRewrite: '/' },
          },
          { Destination: { ServiceSubset: 'v1' } },
        ],
      };
      expect(normalizeConfigEntry(e)).to.deep.equal(e);
    });

    const router = (route: Record<string, unknown>): Record<string, unknown> => ({
      Kind: 'service-router',
      Name: 'web',
      Routes: [route],
    });
    const http = (match: Record<string, unknown>): Record<string, unknown> =>
      router({ Match: { HTTP: match } });
    rejects([
      [
        'PathExact and PathPrefix together',
        http({ PathExact: '/a', PathPrefix: '/b' }),
        'Routes[0].Match.HTTP',
        'Routes[0].Match.HTTP: set at most one of PathExact, PathPrefix or PathRegex (found PathExact and PathPrefix)',
      ],
      [
        'a path prefix not starting with /',
        http({ PathPrefix: 'admin' }),
        'Routes[0].Match.HTTP.PathPrefix',
        'Routes[0].Match.HTTP.PathPrefix: must begin with "/", not "admin"',
      ],
      [
        'a backreference in PathRegex',
        http({ PathRegex: '^/(a+)\\1$' }),
        'Routes[0].Match.HTTP.PathRegex',
        'Routes[0].Match.HTTP.PathRegex: invalid regular expression: backreferences are not supported at pattern character 7',
      ],
      [
        'a lookahead in a header regex',
        http({ Header: [{ Name: 'x-user', Regex: '^(?!admin).*' }] }),
        'Routes[0].Match.HTTP.Header[0].Regex',
        'Routes[0].Match.HTTP.Header[0].Regex: invalid regular expression: lookaround assertions are not supported at pattern character 2',
      ],
      [
        'a header with two matchers',
        http({ Header: [{ Name: 'x-debug', Exact: '1', Prefix: '1' }] }),
        'Routes[0].Match.HTTP.Header[0]',
        'Routes[0].Match.HTTP.Header[0]: set exactly one of Present, Exact, Prefix, Suffix or Regex (found Exact and Prefix)',
      ],
      [
        'a header with no matcher',
        http({ Header: [{ Name: 'x-debug', Invert: true }] }),
        'Routes[0].Match.HTTP.Header[0]',
        'Routes[0].Match.HTTP.Header[0]: set exactly one of Present, Exact, Prefix, Suffix or Regex',
      ],
      [
        'a header without a name',
        http({ Header: [{ Exact: '1' }] }),
        'Routes[0].Match.HTTP.Header[0].Name',
        'Routes[0].Match.HTTP.Header[0].Name: missing (required)',
      ],
      [
        'a Contains header matcher (intentions only)',
        http({ Header: [{ Name: 'x', Contains: 'y' }] }),
        'Routes[0].Match.HTTP.Header[0].Contains',
        'Routes[0].Match.HTTP.Header[0].Contains: unknown field',
      ],
      [
        'a query parameter with Suffix',
        http({ QueryParam: [{ Name: 'x', Suffix: 'y' }] }),
        'Routes[0].Match.HTTP.QueryParam[0].Suffix',
        'Routes[0].Match.HTTP.QueryParam[0].Suffix: unknown field',
      ],
      [
        'a query parameter with two matchers',
        http({ QueryParam: [{ Name: 'x', Present: true, Exact: 'y' }] }),
        'Routes[0].Match.HTTP.QueryParam[0]',
        'Routes[0].Match.HTTP.QueryParam[0]: set exactly one of Present, Exact or Regex (found Present and Exact)',
      ],
      [
        'an unknown method',
        http({ Methods: ['GET', 'FETCH'] }),
        'Routes[0].Match.HTTP.Methods[1]',
        'Routes[0].Match.HTTP.Methods[1]: "FETCH" is not an HTTP method (GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH)',
      ],
      [
        'a lower-case method',
        http({ Methods: ['get'] }),
        'Routes[0].Match.HTTP.Methods[0]',
        'Routes[0].Match.HTTP.Methods[0]: "get": methods are upper case; write "GET"',
      ],
      [
        'a method listed twice',
        http({ Methods: ['GET', 'GET'] }),
        'Routes[0].Match.HTTP.Methods[1]',
        'Routes[0].Match.HTTP.Methods[1]: GET is listed twice',
      ],
      [
        'PrefixRewrite without a path match',
        router({ Match: { HTTP: { PathRegex: '/x' } }, Destination: { PrefixRewrite: '/' } }),
        'Routes[0].Destination.PrefixRewrite',
        'Routes[0].Destination.PrefixRewrite: requires the route to match on PathPrefix or PathExact',
      ],
      [
        'a bad request timeout',
        router({ Destination: { RequestTimeout: '5 seconds' } }),
        'Routes[0].Destination.RequestTimeout',
        'Routes[0].Destination.RequestTimeout: "5 seconds" is not a duration (e.g. "10s", "1m30s", "500ms")',
      ],
      [
        'negative retries',
        router({ Destination: { NumRetries: -1 } }),
        'Routes[0].Destination.NumRetries',
        'Routes[0].Destination.NumRetries: must be 0 or more, not -1',
      ],
      [
        'a retry status code out of range',
        router({ Destination: { RetryOnStatusCodes: [503, 600] } }),
        'Routes[0].Destination.RetryOnStatusCodes[1]',
        'Routes[0].Destination.RetryOnStatusCodes[1]: must be an HTTP status code from 100 to 599, not 600',
      ],
      [
        'an unknown retry condition',
        router({ Destination: { RetryOn: ['5xx', 'timeout'] } }),
        'Routes[0].Destination.RetryOn[1]',
        'Routes[0].Destination.RetryOn[1]: "timeout" is not a retry condition (5xx, gateway-error, reset, connect-failure, envoy-ratelimited, retriable-4xx, refused-stream, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable)',
      ],
      [
        'a header modifier with a bad header name',
        router({ Destination: { RequestHeaders: { Set: { 'x y': '1' } } } }),
        'Routes[0].Destination.RequestHeaders.Set["x y"]',
        'Routes[0].Destination.RequestHeaders.Set["x y"]: "x y" is not a valid HTTP header name',
      ],
      [
        'a destination service that cannot be a SPIFFE segment',
        router({ Destination: { Service: 'api/v2' } }),
        'Routes[0].Destination.Service',
        `Routes[0].Destination.Service: "api/v2" is not a valid service name (1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit and not ending in '.' or '-')`,
      ],
    ]);
  });

  describe('service-splitter', () => {
    it('accepts the Consul documentation examples', () => {
      const versions = {
        Kind: 'service-splitter',
        Name: 'web',
        Splits: [
          { Weight: 90, ServiceSubset: 'v1' },
          { Weight: 10, ServiceSubset: 'v2' },
        ],
      };
      expect(normalizeConfigEntry(versions)).to.deep.equal(versions);
      const headers = {
        Kind: 'service-splitter',
        Name: 'web',
        Splits: [
          {
            Weight: 50,
            Service: 'web',
            ServiceSubset: 'v1',
            RequestHeaders: { Set: { 'x-web-version': 'from-v1' } },
            ResponseHeaders: { Set: { 'x-web-version': 'to-v1' } },
          },
          {
            Weight: 50,
            Service: 'web',
            ServiceSubset: 'v2',
            RequestHeaders: { Set: { 'x-web-version': 'from-v2' } },
            ResponseHeaders: { Set: { 'x-web-version': 'to-v2' } },
          },
        ],
      };
      expect(normalizeConfigEntry(headers)).to.deep.equal(headers);
    });

    it('sums weights exactly in hundredths', () => {
      const thirds = {
        Kind: 'service-splitter',
        Name: 'web',
        Splits: [
          { Weight: 33.33, ServiceSubset: 'a' },
          { Weight: 33.33, ServiceSubset: 'b' },
          { Weight: 33.34, ServiceSubset: 'c' },
        ],
      };
      expect(normalizeConfigEntry(thirds)).to.deep.equal(thirds);
      const tiny = {
        Kind: 'service-splitter',
        Name: 'web',
        Splits: [
          { Weight: 99.99, Service: 'web' },
          { Weight: 0.01, Service: 'web-canary' },
          { Weight: 0, Service: 'web-dark' },
        ],
      };
      expect(normalizeConfigEntry(tiny)).to.deep.equal(tiny);
    });

    const splitter = (splits: unknown): Record<string, unknown> => ({
      Kind: 'service-splitter',
      Name: 'web',
      Splits: splits,
    });
    rejects([
      [
        'weights summing to 99.9',
        splitter([
          { Weight: 90, ServiceSubset: 'v1' },
          { Weight: 9.9, ServiceSubset: 'v2' },
        ]),
        'Splits',
        'Splits: weights sum to 99.9, must sum to 100',
      ],
      [
        'weights summing to 100.01',
        splitter([
          { Weight: 50.01, ServiceSubset: 'v1' },
          { Weight: 50, ServiceSubset: 'v2' },
        ]),
        'Splits',
        'Splits: weights sum to 100.01, must sum to 100',
      ],
      [
        'a weight finer than 0.01',
        splitter([
          { Weight: 33.333, ServiceSubset: 'a' },
          { Weight: 66.667, ServiceSubset: 'b' },
        ]),
        'Splits[0].Weight',
        'Splits[0].Weight: 33.333 has more than two decimal places (weights go in steps of 0.01)',
      ],
      [
        'a negative weight',
        splitter([
          { Weight: 110, ServiceSubset: 'a' },
          { Weight: -10, ServiceSubset: 'b' },
        ]),
        'Splits[0].Weight',
        'Splits[0].Weight: must be between 0 and 100, not 110',
      ],
      [
        'a weight that is not a number',
        splitter([{ Weight: 'all' }]),
        'Splits[0].Weight',
        'Splits[0].Weight: must be a number',
      ],
      [
        'a duplicate split',
        splitter([
          { Weight: 50, ServiceSubset: 'v1' },
          { Weight: 50, Service: 'web', ServiceSubset: 'v1' },
        ]),
        'Splits[1]',
        'Splits[1]: duplicate split to service "web" subset "v1" (same as Splits[0])',
      ],
      [
        'a duplicate split without subsets',
        splitter([
          { Weight: 50, Service: 'api' },
          { Weight: 50, Service: 'api' },
        ]),
        'Splits[1]',
        'Splits[1]: duplicate split to service "api" (same as Splits[0])',
      ],
      ['no splits', splitter([]), 'Splits', 'Splits: at least one split is required'],
      [
        'missing splits',
        { Kind: 'service-splitter', Name: 'web' },
        'Splits',
        'Splits: at least one split is required',
      ],
      [
        'an invalid subset name',
        splitter([{ Weight: 100, ServiceSubset: 'V1' }]),
        'Splits[0].ServiceSubset',
        `Splits[0].ServiceSubset: "V1" is not a valid subset name (1 to 63 lower-case letters, digits or '-', starting and ending with a letter or digit)`,
      ],
    ]);
  });

  describe('service-resolver', () => {
    it('accepts the Consul documentation examples', () => {
      const versions = {
        Kind: 'service-resolver',
        Name: 'web',
        DefaultSubset: 'v1',
        Subsets: {
          v1: { Filter: 'Service.Meta.version == v1' },
          v2: { Filter: 'Service.Meta.version == v2' },
        },
      };
      expect(normalizeConfigEntry(versions)).to.deep.equal(versions);
      const otherDc = {
        Kind: 'service-resolver',
        Name: 'web-dc2',
        Redirect: { Service: 'web', Datacenter: 'dc2' },
      };
      expect(normalizeConfigEntry(otherDc)).to.deep.equal(otherDc);
      const failover = {
        Kind: 'service-resolver',
        Name: 'web',
        ConnectTimeout: '15s',
        Subsets: { v2: { Filter: 'Service.Meta.version == v2' } },
        Failover: { v2: { Datacenters: ['dc2'] }, '*': { Datacenters: ['dc3', 'dc4'] } },
      };
      expect(normalizeConfigEntry(failover)).to.deep.equal(failover);
      const maglev = {
        Kind: 'service-resolver',
        Name: 'web',
        LoadBalancer: {
          Policy: 'maglev',
          HashPolicies: [{ Field: 'header', FieldValue: 'x-user-id' }],
        },
      };
      expect(normalizeConfigEntry(maglev)).to.deep.equal(maglev);
      const ringHash = {
        Kind: 'service-resolver',
        Name: 'web',
        LoadBalancer: {
          Policy: 'ring_hash',
          RingHashConfig: { MinimumRingSize: 1024, MaximumRingSize: 8192 },
          HashPolicies: [
            { Field: 'cookie', FieldValue: 'session', CookieConfig: { TTL: '1h', Path: '/' } },
            { SourceIP: true, Terminal: true },
          ],
        },
      };
      expect(normalizeConfigEntry(ringHash)).to.deep.equal(ringHash);
    });

    it('accepts failover targets and a service failover with a subset', () => {
      const e = {
        Kind: 'service-resolver',
        Name: 'web',
        RequestTimeout: '30s',
        Subsets: { v1: { Filter: 'Service.Meta.version == v1', OnlyPassing: true } },
        Failover: {
          v1: { Service: 'web-backup', ServiceSubset: 'blue' },
          '*': { Targets: [{ Datacenter: 'dc3' }, { Service: 'web', ServiceSubset: 'v1' }] },
        },
        LoadBalancer: { Policy: 'least_request', LeastRequestConfig: { ChoiceCount: 3 } },
      };
      expect(normalizeConfigEntry(e)).to.deep.equal(e);
    });

    const resolver = (extra: Record<string, unknown>): Record<string, unknown> => ({
      Kind: 'service-resolver',
      Name: 'web',
      ...extra,
    });
    rejects([
      [
        'a DefaultSubset naming a missing subset',
        resolver({ DefaultSubset: 'v3', Subsets: { v1: {}, v2: {} } }),
        'DefaultSubset',
        'DefaultSubset: "v3" is not one of the Subsets (v1, v2)',
      ],
      [
        'a DefaultSubset with no subsets',
        resolver({ DefaultSubset: 'v1' }),
        'DefaultSubset',
        'DefaultSubset: "v1" is not one of the Subsets (there are none)',
      ],
      [
        'a bad subset filter',
        resolver({ Subsets: { v1: { Filter: 'Service.Meta.version ==' } } }),
        'Subsets["v1"].Filter',
        `Subsets["v1"].Filter: bad filter for subset "v1": invalid filter expression at position 24: expected a value after '==', found the end of the expression`,
      ],
      [
        'a subset filter with an unsafe regex',
        resolver({ Subsets: { v1: { Filter: 'Service.Meta.version matches "(?=v)"' } } }),
        'Subsets["v1"].Filter',
        'Subsets["v1"].Filter: bad filter for subset "v1": invalid filter expression at position 30: regular expression "(?=v)" rejected: lookaround assertions are not supported at pattern character 1',
      ],
      [
        'an invalid subset name',
        resolver({ Subsets: { 'v1.0': {} } }),
        'Subsets["v1.0"]',
        `Subsets["v1.0"]: "v1.0" is not a valid subset name (1 to 63 lower-case letters, digits or '-', starting and ending with a letter or digit)`,
      ],
      [
        'Redirect with Subsets',
        resolver({ Subsets: { v1: {} }, Redirect: { Service: 'api' } }),
        'Redirect',
        'Redirect: cannot be combined with Subsets: a redirected service resolves nothing itself',
      ],
      [
        'Redirect with Failover',
        resolver({ Failover: { '*': { Service: 'b' } }, Redirect: { Service: 'api' } }),
        'Redirect',
        'Redirect: cannot be combined with Failover: a redirected service resolves nothing itself',
      ],
      [
        'Redirect with DefaultSubset',
        resolver({ DefaultSubset: 'v1', Redirect: { Service: 'api' } }),
        'Redirect',
        'Redirect: cannot be combined with DefaultSubset: a redirected service resolves nothing itself',
      ],
      [
        'an empty Redirect',
        resolver({ Redirect: { Namespace: 'default' } }),
        'Redirect',
        'Redirect: set at least one of Service, ServiceSubset or Datacenter',
      ],
      [
        'a Redirect to itself',
        resolver({ Redirect: { Service: 'web' } }),
        'Redirect',
        'Redirect: redirects "web" to itself',
      ],
      [
        'a Redirect to a subset of itself',
        resolver({ Redirect: { ServiceSubset: 'v1' } }),
        'Redirect.ServiceSubset',
        'Redirect.ServiceSubset: "web" redirects, so it has no subsets of its own; name the Service that defines "v1"',
      ],
      [
        'a Redirect to a peer',
        resolver({ Redirect: { Service: 'web', Peer: 'cluster-02' } }),
        'Redirect.Peer',
        'Redirect.Peer: not supported by Trellis (cluster peering needs mesh gateways)',
      ],
      [
        'failover for a subset that does not exist (the docs example without Subsets)',
        resolver({ Failover: { v2: { Datacenters: ['dc2'] }, '*': { Datacenters: ['dc3'] } } }),
        'Failover["v2"]',
        'Failover["v2"]: there is no subset "v2" to fail over from; use "*" or one of the Subsets (there are none)',
      ],
      [
        'an empty failover',
        resolver({ Failover: { '*': {} } }),
        'Failover["*"]',
        'Failover["*"]: set at least one of Service, ServiceSubset, Datacenters or Targets',
      ],
      [
        'failover to a missing subset of itself',
        resolver({ Subsets: { v1: {} }, Failover: { v1: { ServiceSubset: 'v9' } } }),
        'Failover["v1"].ServiceSubset',
        'Failover["v1"].ServiceSubset: "v9" is not one of the Subsets of "web" (v1)',
      ],
      [
        'failover Targets with Datacenters',
        resolver({ Failover: { '*': { Datacenters: ['dc2'], Targets: [{ Datacenter: 'dc3' }] } } }),
        'Failover["*"].Targets',
        'Failover["*"].Targets: cannot be combined with Service, ServiceSubset or Datacenters',
      ],
      [
        'a failover target on a peer (docs example)',
        resolver({ Failover: { '*': { Targets: [{ Datacenter: 'dc3' }, { Peer: 'peer-01' }] } } }),
        'Failover["*"].Targets[1].Peer',
        'Failover["*"].Targets[1].Peer: not supported by Trellis (cluster peering needs mesh gateways)',
      ],
      [
        'a failover to another namespace (Enterprise docs example)',
        resolver({ Failover: { '*': { Datacenters: ['dc2'], Namespace: 'secondary' } } }),
        'Failover["*"].Namespace',
        'Failover["*"].Namespace: Trellis has only the "default" namespace, not "secondary"',
      ],
      [
        'a bad connect timeout',
        resolver({ ConnectTimeout: '15' }),
        'ConnectTimeout',
        'ConnectTimeout: "15" is not a duration (e.g. "10s", "1m30s", "500ms")',
      ],
      [
        'an unknown load-balancing policy',
        resolver({ LoadBalancer: { Policy: 'fastest' } }),
        'LoadBalancer.Policy',
        'LoadBalancer.Policy: must be "round_robin", "least_request", "ring_hash", "maglev" or "random", not "fastest"',
      ],
      [
        'hash policies with round robin',
        resolver({ LoadBalancer: { Policy: 'round_robin', HashPolicies: [{ SourceIP: true }] } }),
        'LoadBalancer.HashPolicies',
        'LoadBalancer.HashPolicies: only allowed with Policy "ring_hash" or "maglev"',
      ],
      [
        'a least-request config with ring hash',
        resolver({ LoadBalancer: { Policy: 'ring_hash', LeastRequestConfig: { ChoiceCount: 2 } } }),
        'LoadBalancer.LeastRequestConfig',
        'LoadBalancer.LeastRequestConfig: only allowed with Policy "least_request"',
      ],
      [
        'a ring-hash config with maglev',
        resolver({ LoadBalancer: { Policy: 'maglev', RingHashConfig: { MinimumRingSize: 1 } } }),
        'LoadBalancer.RingHashConfig',
        'LoadBalancer.RingHashConfig: only allowed with Policy "ring_hash"',
      ],
      [
        'a hash policy with Field and SourceIP',
        resolver({
          LoadBalancer: {
            Policy: 'maglev',
            HashPolicies: [{ Field: 'header', FieldValue: 'x', SourceIP: true }],
          },
        }),
        'LoadBalancer.HashPolicies[0]',
        'LoadBalancer.HashPolicies[0]: set either Field or SourceIP, not both',
      ],
      [
        'a hash policy field without a value',
        resolver({ LoadBalancer: { Policy: 'maglev', HashPolicies: [{ Field: 'cookie' }] } }),
        'LoadBalancer.HashPolicies[0].FieldValue',
        'LoadBalancer.HashPolicies[0].FieldValue: required when Field is set',
      ],
      [
        'a cookie config on a header hash',
        resolver({
          LoadBalancer: {
            Policy: 'ring_hash',
            HashPolicies: [{ Field: 'header', FieldValue: 'x', CookieConfig: { Path: '/' } }],
          },
        }),
        'LoadBalancer.HashPolicies[0].CookieConfig',
        'LoadBalancer.HashPolicies[0].CookieConfig: only allowed with Field "cookie"',
      ],
      [
        'a session cookie with a TTL',
        resolver({
          LoadBalancer: {
            Policy: 'ring_hash',
            HashPolicies: [
              { Field: 'cookie', FieldValue: 'id', CookieConfig: { Session: true, TTL: '1s' } },
            ],
          },
        }),
        'LoadBalancer.HashPolicies[0].CookieConfig',
        'LoadBalancer.HashPolicies[0].CookieConfig: Session and TTL are mutually exclusive',
      ],
    ]);
  });

  describe('service-intentions', () => {
    it('accepts the Consul documentation examples', () => {
      const l4 = normalizeConfigEntry({
        Kind: 'service-intentions',
        Name: 'db',
        Sources: [
          { Name: 'web', Action: 'deny' },
          { Name: 'api', Action: 'allow', Description: 'api reads the db', Precedence: 9 },
        ],
      });
      expect(l4).to.deep.equal({
        Kind: 'service-intentions',
        Name: 'db',
        Sources: [
          { Name: 'web', Action: 'deny', Type: 'consul' },
          { Name: 'api', Action: 'allow', Type: 'consul', Description: 'api reads the db' },
        ],
      });
      const l7 = {
        Kind: 'service-intentions',
        Name: 'api',
        Sources: [
          {
            Name: 'admin-dashboard',
            Permissions: [{ Action: 'allow', HTTP: { PathPrefix: '/admin' } }],
            Type: 'consul',
          },
          {
            Name: 'report-generator',
            Permissions: [
              { Action: 'allow', HTTP: { PathPrefix: '/v2/reports', Methods: ['GET'] } },
            ],
            Type: 'consul',
          },
          {
            Name: '*',
            Permissions: [
              {
                Action: 'deny',
                HTTP: { PathPrefix: '/', Header: [{ Name: 'x-debug', Present: true }] },
              },
              {
                Action: 'allow',
                HTTP: {
                  PathRegex: '^/v[0-9]+/health$',
                  Header: [
                    { Name: 'user-agent', Contains: 'Curl', IgnoreCase: true },
                    { Name: 'x-env', Regex: 'prod|stage', Invert: true },
                  ],
                },
              },
            ],
            Type: 'consul',
          },
        ],
      };
      expect(normalizeConfigEntry(l7)).to.deep.equal(l7);
    });

    it('accepts a wildcard destination and legacy fields', () => {
      const e = {
        Kind: 'service-intentions',
        Name: '*',
        Sources: [
          {
            Name: '*',
            Action: 'deny',
            Type: 'consul',
            LegacyID: '8c7e4b0e-3cf4-4c25-b1b3-31f2c6f7a1e2',
            LegacyMeta: { created_by: 'migration' },
            LegacyCreateTime: '2020-10-01T10:00:00Z',
            LegacyUpdateTime: '2020-10-01T10:00:00Z',
          },
        ],
      };
      expect(normalizeConfigEntry(e)).to.deep.equal(e);
    });

    const intentions = (...sources: unknown[]): Record<string, unknown> => ({
      Kind: 'service-intentions',
      Name: 'api',
      Sources: sources,
    });
    rejects([
      [
        'a source with both Action and Permissions',
        intentions({
          Name: 'web',
          Action: 'allow',
          Permissions: [{ Action: 'deny', HTTP: { PathPrefix: '/' } }],
        }),
        'Sources[0]',
        'Sources[0]: Action and Permissions are mutually exclusive',
      ],
      [
        'a source with neither',
        intentions({ Name: 'web' }),
        'Sources[0]',
        'Sources[0]: set one of Action or Permissions',
      ],
      [
        'a source with an empty permission list',
        intentions({ Name: 'web', Permissions: [] }),
        'Sources[0]',
        'Sources[0]: set one of Action or Permissions',
      ],
      [
        'a bad action',
        intentions({ Name: 'web', Action: 'Allow' }),
        'Sources[0].Action',
        'Sources[0].Action: must be "allow" or "deny", not "Allow"',
      ],
      [
        'a source without a name',
        intentions({ Action: 'allow' }),
        'Sources[0].Name',
        'Sources[0].Name: missing (required)',
      ],
      [
        'a duplicate source',
        intentions({ Name: 'web', Action: 'allow' }, { Name: 'web', Action: 'deny' }),
        'Sources[1].Name',
        'Sources[1].Name: "web" is already listed in Sources[0]',
      ],
      [
        'a source type other than consul',
        intentions({ Name: 'web', Action: 'allow', Type: 'external' }),
        'Sources[0].Type',
        'Sources[0].Type: must be "consul", not "external"',
      ],
      [
        'a peer source',
        intentions({ Name: 'web', Action: 'allow', Peer: 'cluster-02' }),
        'Sources[0].Peer',
        'Sources[0].Peer: not supported by Trellis (cluster peering needs mesh gateways)',
      ],
      [
        'a permission without an action',
        intentions({ Name: 'web', Permissions: [{ HTTP: { PathPrefix: '/' } }] }),
        'Sources[0].Permissions[0].Action',
        'Sources[0].Permissions[0].Action: missing (required); use "allow" or "deny"',
      ],
      [
        'a permission without HTTP',
        intentions({ Name: 'web', Permissions: [{ Action: 'allow' }] }),
        'Sources[0].Permissions[0].HTTP',
        'Sources[0].Permissions[0].HTTP: missing (required): what requests the permission applies to',
      ],
      [
        'a permission with empty HTTP',
        intentions({ Name: 'web', Permissions: [{ Action: 'allow', HTTP: {} }] }),
        'Sources[0].Permissions[0].HTTP',
        'Sources[0].Permissions[0].HTTP: set at least one of PathExact, PathPrefix, PathRegex, Header or Methods',
      ],
      [
        'a permission with two paths',
        intentions({
          Name: 'web',
          Permissions: [{ Action: 'allow', HTTP: { PathExact: '/a', PathRegex: '/b' } }],
        }),
        'Sources[0].Permissions[0].HTTP',
        'Sources[0].Permissions[0].HTTP: set at most one of PathExact, PathPrefix or PathRegex (found PathExact and PathRegex)',
      ],
      [
        'a permission regex with a backreference',
        intentions({
          Name: 'web',
          Permissions: [{ Action: 'allow', HTTP: { PathRegex: '(a)\\1' } }],
        }),
        'Sources[0].Permissions[0].HTTP.PathRegex',
        'Sources[0].Permissions[0].HTTP.PathRegex: invalid regular expression: backreferences are not supported at pattern character 4',
      ],
      [
        'IgnoreCase with Present',
        intentions({
          Name: 'web',
          Permissions: [
            { Action: 'allow', HTTP: { Header: [{ Name: 'x', Present: true, IgnoreCase: true }] } },
          ],
        }),
        'Sources[0].Permissions[0].HTTP.Header[0].IgnoreCase',
        'Sources[0].Permissions[0].HTTP.Header[0].IgnoreCase: only applies to Exact, Prefix, Suffix or Contains',
      ],
      [
        'JWT requirements',
        intentions({
          Name: 'web',
          Permissions: [
            { Action: 'allow', HTTP: { PathPrefix: '/' }, JWT: { Providers: [{ Name: 'okta' }] } },
          ],
        }),
        'Sources[0].Permissions[0].JWT',
        'Sources[0].Permissions[0].JWT: not supported by Trellis (Trellis does not verify JWTs)',
      ],
      [
        'a destination with a slash',
        { Kind: 'service-intentions', Name: 'a/b', Sources: [] },
        'Name',
        `Name: "a/b" is not a valid service name (1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit and not ending in '.' or '-', or "*")`,
      ],
      [
        'a partial wildcard source',
        intentions({ Name: 'web-*', Action: 'allow' }),
        'Sources[0].Name',
        `Sources[0].Name: "web-*" is not a valid service name (1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit and not ending in '.' or '-', or "*")`,
      ],
    ]);

    it('stores only sources that policy.validateRule accepts, in its own types', () => {
      const entry = normalizeConfigEntry({
        Kind: 'service-intentions',
        Name: 'api',
        Sources: [
          { Name: 'web', Action: 'allow' },
          {
            Name: 'admin',
            Permissions: [
              {
                Action: 'allow',
                HTTP: { PathRegex: '^/admin/', Header: [{ Name: 'x', Regex: 'y' }] },
              },
            ],
          },
        ],
      });
      if (entry.Kind !== 'service-intentions') throw new Error('wrong kind');
      for (const s of entry.Sources) {
        const rule: IntentionRule = {
          ID: `${s.Name} => ${entry.Name}`,
          SourceName: s.Name,
          DestinationName: entry.Name,
          Action: s.Action,
          Permissions: s.Permissions,
        };
        expect(validateRule(rule)).to.equal(undefined);
      }
      // Every typed entry is also the api's open ConfigEntry, as the client sends it.
      const wire: ApiConfigEntry = entry;
      expect(wire.Kind).to.equal('service-intentions');
    });
  });
});

/** An in-memory store of entries for the graph checks. */
class Store implements ConfigEntryView {
  private readonly entries = new Map<string, ConfigEntry>();

  constructor(...bodies: Record<string, unknown>[]) {
    for (const b of bodies) this.put(normalizeConfigEntry(b));
  }

  put(e: ConfigEntry): void {
    this.entries.set(`${e.Kind}/${e.Name}`, e);
  }

  /** Validates and stores, as the catalog's write path would. */
  write(body: Record<string, unknown>): string | undefined {
    const e = normalizeConfigEntry(body);
    const problem = validateConfigGraph(e, this);
    if (!problem) this.put(e);
    return problem;
  }

  delete(kind: ConfigEntryKind, name: string): string | undefined {
    const problem = validateConfigDelete(kind, name, this);
    if (!problem) this.entries.delete(`${kind}/${name}`);
    return problem;
  }

  get(kind: ConfigEntryKind, name: string): ConfigEntry | undefined {
    return this.entries.get(`${kind}/${name}`);
  }

  list(kind: ConfigEntryKind): ConfigEntry[] {
    return [...this.entries.values()].filter((e) => e.Kind === kind);
  }
}

const defaults = (name: string, protocol: string): Record<string, unknown> => ({
  Kind: 'service-defaults',
  Name: name,
  Protocol: protocol,
});
const globalProtocol = (protocol: string): Record<string, unknown> => ({
  Kind: 'proxy-defaults',
  Name: 'global',
  Config: { protocol },
});
const webRouter: Record<string, unknown> = {
  Kind: 'service-router',
  Name: 'web',
  Routes: [{ Match: { HTTP: { PathPrefix: '/admin' } }, Destination: { Service: 'admin' } }],
};
const canaryRouter: Record<string, unknown> = {
  Kind: 'service-router',
  Name: 'web',
  Routes: [
    {
      Match: { HTTP: { Header: [{ Name: 'x-debug', Exact: '1' }] } },
      Destination: { ServiceSubset: 'canary' },
    },
  ],
};
const webResolver: Record<string, unknown> = {
  Kind: 'service-resolver',
  Name: 'web',
  Subsets: {
    v1: { Filter: 'Service.Meta.version == v1' },
    canary: { Filter: 'Service.Meta.canary == true' },
  },
};
const webSplitter: Record<string, unknown> = {
  Kind: 'service-splitter',
  Name: 'web',
  Splits: [
    { Weight: 90, ServiceSubset: 'v1' },
    { Weight: 10, ServiceSubset: 'canary' },
  ],
};
const l7Intentions: Record<string, unknown> = {
  Kind: 'service-intentions',
  Name: 'web',
  Sources: [{ Name: 'frontend', Permissions: [{ Action: 'allow', HTTP: { PathPrefix: '/' } }] }],
};

describe('config entries: checks across entries', () => {
  it('finds a service protocol in service-defaults, then proxy-defaults, then tcp', () => {
    const s = new Store();
    expect(serviceProtocol('web', s)).to.equal('tcp');
    s.write(globalProtocol('HTTP2'));
    expect(serviceProtocol('web', s)).to.equal('http2');
    s.write(defaults('web', 'grpc'));
    expect(serviceProtocol('web', s)).to.equal('grpc');
    expect(serviceProtocol('db', s)).to.equal('http2');
  });

  it('refuses a router on a tcp service, and accepts it once the service speaks http', () => {
    const s = new Store();
    expect(s.write(webRouter)).to.equal(
      'service-router "web": protocol "tcp" does not support routing; set Protocol = "http" in service-defaults "web"',
    );
    expect(s.write(defaults('web', 'http'))).to.equal(undefined);
    // The destination "admin" is still tcp: not compatible with http.
    expect(s.write(webRouter)).to.equal(
      'service-router "web": Routes[0].Destination.Service: service "admin" has protocol "tcp", which is not compatible with protocol "http" of "web"',
    );
    expect(s.write(defaults('admin', 'http2'))).to.equal(undefined);
    expect(s.write(webRouter)).to.equal(undefined);
  });

  it('takes the protocol from proxy-defaults global', () => {
    const s = new Store(globalProtocol('http'));
    expect(s.write(webRouter)).to.equal(undefined);
    expect(s.write({ Kind: 'service-splitter', Name: 'web', Splits: [{ Weight: 100 }] })).to.equal(
      undefined,
    );
  });

  it('refuses a splitter on a tcp service', () => {
    const s = new Store(webResolver);
    expect(s.write(webSplitter)).to.equal(
      'service-splitter "web": protocol "tcp" does not support splitting; set Protocol = "http" in service-defaults "web"',
    );
  });

  it('requires referenced subsets to exist in the target resolver', () => {
    const s = new Store(defaults('web', 'http'));
    expect(s.write(canaryRouter)).to.equal(
      'service-router "web": Routes[0].Destination.ServiceSubset: subset "canary" is not defined: there is no service-resolver "web"',
    );
    expect(s.write({ ...webResolver, Subsets: { v1: {} } })).to.equal(undefined);
    expect(s.write(canaryRouter)).to.equal(
      'service-router "web": Routes[0].Destination.ServiceSubset: service-resolver "web" does not define subset "canary"',
    );
    expect(s.write(webResolver)).to.equal(undefined);
    expect(s.write(canaryRouter)).to.equal(undefined);
    expect(s.write(webSplitter)).to.equal(undefined);
  });

  it('checks subsets that a resolver redirects or fails over to', () => {
    const s = new Store(webResolver);
    const redirect = {
      Kind: 'service-resolver',
      Name: 'web-legacy',
      Redirect: { Service: 'web', ServiceSubset: 'v2' },
    };
    expect(s.write(redirect)).to.equal(
      'service-resolver "web-legacy": Redirect.ServiceSubset: service-resolver "web" does not define subset "v2"',
    );
    expect(s.write({ ...redirect, Redirect: { Service: 'web', ServiceSubset: 'v1' } })).to.equal(
      undefined,
    );
    const failover = {
      Kind: 'service-resolver',
      Name: 'api',
      Failover: { '*': { Targets: [{ Service: 'web', ServiceSubset: 'blue' }] } },
    };
    expect(s.write(failover)).to.equal(
      'service-resolver "api": Failover["*"].Targets[0].ServiceSubset: service-resolver "web" does not define subset "blue"',
    );
  });

  it('requires an http-family destination for L7 intentions, but not for "*" or L4', () => {
    const s = new Store();
    expect(s.write(l7Intentions)).to.equal(
      'service-intentions "web": Sources[0].Permissions: L7 permissions need an HTTP-family protocol (http, http2 or grpc), but "web" has protocol "tcp"; set Protocol = "http" in service-defaults "web"',
    );
    expect(s.write({ ...l7Intentions, Name: '*' })).to.equal(undefined);
    expect(
      s.write({
        Kind: 'service-intentions',
        Name: 'db',
        Sources: [{ Name: 'web', Action: 'allow' }],
      }),
    ).to.equal(undefined);
    s.write(defaults('web', 'grpc'));
    expect(s.write(l7Intentions)).to.equal(undefined);
  });

  it('refuses to change a protocol to tcp under a router, splitter or L7 intention', () => {
    const s = new Store(defaults('web', 'http'), webResolver, canaryRouter);
    expect(s.write(defaults('web', 'tcp'))).to.equal(
      'service-defaults "web": would invalidate service-router "web": protocol "tcp" does not support routing',
    );
    expect(s.write(defaults('web', 'http2'))).to.equal(undefined);

    const t = new Store(defaults('web', 'http'), l7Intentions);
    expect(t.write(defaults('web', 'tcp'))).to.equal(
      'service-defaults "web": would invalidate service-intentions "web": Sources[0].Permissions: L7 permissions need an HTTP-family protocol (http, http2 or grpc), but "web" has protocol "tcp"',
    );
    const u = new Store(globalProtocol('http'), webResolver, webSplitter);
    expect(u.write(globalProtocol('tcp'))).to.equal(
      'proxy-defaults "global": would invalidate service-splitter "web": protocol "tcp" does not support splitting',
    );
    // A destination's protocol matters too.
    const v = new Store(globalProtocol('http'), webRouter);
    expect(v.write(defaults('admin', 'tcp'))).to.equal(
      'service-defaults "admin": would invalidate service-router "web": Routes[0].Destination.Service: service "admin" has protocol "tcp", which is not compatible with protocol "http" of "web"',
    );
  });

  it('refuses to drop a subset that a router uses', () => {
    const s = new Store(defaults('web', 'http'), webResolver, canaryRouter);
    expect(s.write({ ...webResolver, Subsets: { v1: {} } })).to.equal(
      'service-resolver "web": would invalidate service-router "web": Routes[0].Destination.ServiceSubset: service-resolver "web" does not define subset "canary"',
    );
  });

  it('does not let an already-broken entry block unrelated writes', () => {
    const s = new Store(defaults('web', 'http'), canaryRouter); // stored before validation existed
    expect(s.write(defaults('web', 'http2'))).to.equal(undefined);
    expect(s.write(globalProtocol('tcp'))).to.equal(undefined);
  });

  describe('deletion', () => {
    it('refuses to delete a resolver whose subsets are referenced', () => {
      const s = new Store(defaults('web', 'http'), webResolver, canaryRouter);
      expect(s.delete('service-resolver', 'web')).to.equal(
        'cannot delete service-resolver "web": service-router "web" would become invalid: Routes[0].Destination.ServiceSubset: subset "canary" is not defined: there is no service-resolver "web"',
      );
      expect(s.delete('service-router', 'web')).to.equal(undefined);
      expect(s.delete('service-resolver', 'web')).to.equal(undefined);
    });

    it('refuses to delete service-defaults that a router or L7 intention relies on', () => {
      const s = new Store(defaults('web', 'http'), webRouter, defaults('admin', 'http'));
      expect(s.delete('service-defaults', 'web')).to.equal(
        'cannot delete service-defaults "web": service-router "web" would become invalid: protocol "tcp" does not support routing',
      );
      const t = new Store(defaults('web', 'http'), l7Intentions);
      expect(t.delete('service-defaults', 'web')).to.equal(
        'cannot delete service-defaults "web": service-intentions "web" would become invalid: Sources[0].Permissions: L7 permissions need an HTTP-family protocol (http, http2 or grpc), but "web" has protocol "tcp"',
      );
    });

    it('allows the delete when proxy-defaults still make the service http', () => {
      const s = new Store(globalProtocol('http'), defaults('web', 'http'), webRouter);
      expect(s.delete('service-defaults', 'web')).to.equal(undefined);
      expect(s.delete('proxy-defaults', 'global')).to.equal(
        'cannot delete proxy-defaults "global": service-router "web" would become invalid: protocol "tcp" does not support routing',
      );
    });

    it('allows deleting what nothing depends on, and what does not exist', () => {
      const s = new Store(defaults('web', 'http'), webResolver);
      expect(s.delete('service-resolver', 'web')).to.equal(undefined);
      expect(s.delete('service-router', 'nothing')).to.equal(undefined);
      expect(s.delete('service-defaults', 'web')).to.equal(undefined);
    });
  });
});
