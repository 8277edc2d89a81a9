/**
 * The schema of a Consul service definition file (`service`/`services`, `check`/`checks` at the
 * top level) and its conversion to the wire types the agent API takes.
 */
import type {
  CheckRegistration,
  CheckType,
  ConnectProxyConfig,
  ServiceAddress,
  ServiceConnect,
  ServiceRegistration,
  Weights,
} from '../api/index.js';
import type { Position, ValueNode } from './ast.js';
import { decode, type DecodeResult } from './decode.js';
import { sortDiagnostics, type ConfigDiagnostic } from './diagnostics.js';
import {
  field,
  schema,
  t,
  type Check,
  type FieldSpec,
  type ObjectView,
  type Schema,
} from './schema.js';
import {
  all,
  atLeast,
  cidr,
  metaKey,
  metaValue,
  META_MAX_PAIRS,
  noControl,
  notEmpty,
  oneOf,
  port,
  serviceIdent,
  unixUser,
  cgroupPath,
} from './validators.js';

const SERVICE_KINDS = [
  '',
  'connect-proxy',
  'mesh-gateway',
  'terminating-gateway',
  'ingress-gateway',
  'api-gateway',
];
const CHECK_KINDS = ['args', 'http', 'tcp', 'grpc', 'ttl'] as const;
const nonNegative = atLeast(0);
/** An upstream's local listener port: required, so 0 ("none") is not allowed. */
const bindPort: Check<number> = (n) =>
  n < 1 || n > 65535 ? `port ${n} is out of range: use 1-65535` : undefined;
/** Where an upstream listens when `local_bind_address` is not set (as the agent fills it). */
const DEFAULT_BIND_ADDRESS = '127.0.0.1';

/** Check keys; a top-level check is a CheckRegistration (ID, required Name, ServiceID). */
function checkSchema(topLevel: boolean): Schema {
  const fields: FieldSpec[] = [
    field('id', t.string(noControl('check id')), {
      out: topLevel ? 'ID' : 'CheckID',
      aliases: ['check_id'],
    }),
    field('name', t.string(noControl('check name')), { out: 'Name', required: topLevel }),
    field('notes', t.string(), { out: 'Notes' }),
    field('args', t.listOf(t.string()), { out: 'ScriptArgs', aliases: ['script_args'] }),
    field('interval', t.duration(), { out: 'Interval' }),
    field('timeout', t.duration(), { out: 'Timeout' }),
    field('ttl', t.duration(), { out: 'TTL' }),
    field('http', t.string(), { out: 'HTTP' }),
    field('header', t.mapOf(t.listOf(t.string())), { out: 'Header' }),
    field('method', t.string(), { out: 'Method' }),
    field('body', t.string(), { out: 'Body' }),
    field('disable_redirects', t.bool(), { out: 'DisableRedirects' }),
    field('tcp', t.string(), { out: 'TCP' }),
    field('grpc', t.string(), { out: 'GRPC' }),
    field('grpc_use_tls', t.bool(), { out: 'GRPCUseTLS' }),
    field('tls_server_name', t.string(), { out: 'TLSServerName' }),
    field('tls_skip_verify', t.bool(), { out: 'TLSSkipVerify' }),
    field('status', t.string(oneOf(['passing', 'warning', 'critical'])), { out: 'Status' }),
    field('success_before_passing', t.int(nonNegative), { out: 'SuccessBeforePassing' }),
    field('failures_before_warning', t.int(nonNegative), { out: 'FailuresBeforeWarning' }),
    field('failures_before_critical', t.int(nonNegative), { out: 'FailuresBeforeCritical' }),
    field('deregister_critical_service_after', t.duration(), {
      out: 'DeregisterCriticalServiceAfter',
    }),
    field('output_max_size', t.int(nonNegative), { out: 'OutputMaxSize' }),
  ];
  if (topLevel)
    fields.push(field('service_id', t.string(serviceIdent('service id')), { out: 'ServiceID' }));
  return schema(fields, checkRules);
}

/** A check runs exactly one way; all but TTL checks run on an interval. */
function checkRules(v: ObjectView): void {
  const kinds = CHECK_KINDS.filter((k) => v.has(k));
  const list = CHECK_KINDS.join(', ');
  if (kinds.length === 0) {
    v.error(`a check needs one of ${list}`);
    return;
  }
  for (const extra of kinds.slice(1)) {
    v.error(`conflicts with ${kinds[0]}: a check takes exactly one of ${list}`, extra);
  }
  if (!v.has('ttl') && !v.has('interval')) {
    v.error('missing required key (every check except a ttl check needs one)', 'interval');
  }
}

const upstreamSchema = schema([
  field('destination_type', t.string(oneOf(['service', 'prepared_query'])), {
    out: 'DestinationType',
  }),
  field('destination_namespace', t.string(), { out: 'DestinationNamespace' }),
  field('destination_name', t.string(serviceIdent('destination name')), {
    out: 'DestinationName',
    required: true,
  }),
  field('datacenter', t.string(), { out: 'Datacenter' }),
  field('local_bind_address', t.string(), { out: 'LocalBindAddress' }),
  field('local_bind_port', t.int(bindPort), { out: 'LocalBindPort', required: true }),
  field('local_bind_socket_path', t.string(), { out: 'LocalBindSocketPath' }),
  field('config', t.opaque(), { out: 'Config' }),
]);

const proxySchema = schema([
  field('destination_service_name', t.string(serviceIdent('destination service name')), {
    out: 'DestinationServiceName',
  }),
  field('destination_service_id', t.string(serviceIdent('destination service id')), {
    out: 'DestinationServiceID',
  }),
  field('local_service_address', t.string(), { out: 'LocalServiceAddress' }),
  field('local_service_port', t.int(port), { out: 'LocalServicePort' }),
  field('mode', t.string(oneOf(['', 'direct', 'transparent'])), { out: 'Mode' }),
  field(
    'transparent_proxy',
    t.object(
      schema(
        [
          field('outbound_listener_port', t.int(port), { out: 'OutboundListenerPort' }),
          field('dialed_directly', t.bool(), { out: 'DialedDirectly' }),
          // Trellis: whose traffic the agent's nftables rules capture, and what they leave alone.
          field('capture_user', t.string(unixUser), { out: 'CaptureUser' }),
          field('capture_cgroup', t.string(cgroupPath), { out: 'CaptureCgroup' }),
          field('exclude_inbound_ports', t.listOf(t.int(port)), { out: 'ExcludeInboundPorts' }),
          field('exclude_outbound_ports', t.listOf(t.int(port)), { out: 'ExcludeOutboundPorts' }),
          field('exclude_outbound_cidrs', t.listOf(t.string(cidr)), {
            out: 'ExcludeOutboundCIDRs',
          }),
          field('exclude_uids', t.listOf(t.int(nonNegative)), { out: 'ExcludeUIDs' }),
          field('redirect_dns', t.bool(), { out: 'RedirectDNS' }),
        ],
        (v) => {
          if (v.has('capture_user') && v.has('capture_cgroup'))
            v.error('set either capture_user or capture_cgroup, not both', 'capture_cgroup');
        },
      ),
    ),
    { out: 'TransparentProxy' },
  ),
  field('config', t.opaque(), { out: 'Config' }),
  // A list of objects, or repeated `upstreams { }` blocks.
  field('upstreams', t.block(upstreamSchema), { out: 'Upstreams' }),
]);

const weightsSchema = schema([
  field('passing', t.int(atLeast(1)), { out: 'Passing' }),
  field('warning', t.int(nonNegative), { out: 'Warning' }),
]);

const taggedAddressSchema = schema([
  field('address', t.string(all(notEmpty('address'), noControl('address'))), {
    out: 'Address',
    required: true,
  }),
  field('port', t.int(port), { out: 'Port' }),
]);

const serviceCheckSchema = checkSchema(false);

/** Service keys; a sidecar_service has the same keys but no `connect` and needs no name. */
function serviceFields(sidecar: boolean): FieldSpec[] {
  const fields: FieldSpec[] = [
    field('kind', t.string(oneOf(SERVICE_KINDS)), { out: 'Kind' }),
    field('id', t.string(serviceIdent('service id')), { out: 'ID' }),
    field('name', t.string(serviceIdent('service name')), { out: 'Name', required: !sidecar }),
    field('tags', t.listOf(t.string(noControl('tag'))), { out: 'Tags' }),
    field('address', t.string(noControl('address')), { out: 'Address' }),
    field('port', t.int(port), { out: 'Port' }),
    field('meta', t.mapOfString(metaValue, metaKey, META_MAX_PAIRS), { out: 'Meta' }),
    field('enable_tag_override', t.bool(), { out: 'EnableTagOverride' }),
    field('weights', t.object(weightsSchema), { out: 'Weights' }),
    field('tagged_addresses', t.mapOf(t.object(taggedAddressSchema)), { out: 'TaggedAddresses' }),
    field('check', t.block(serviceCheckSchema), { out: 'Check' }),
    field('checks', t.listOf(t.object(serviceCheckSchema)), { out: 'Checks' }),
    field('proxy', t.object(proxySchema), { out: 'Proxy' }),
  ];
  // The ACL token the agent writes this service to the catalog with (Consul's `token`).
  if (!sidecar) fields.push(field('token', t.string(), { out: 'Token' }));
  if (!sidecar) fields.push(field('connect', t.object(connectSchema()), { out: 'Connect' }));
  return fields;
}

function sidecarRules(v: ObjectView): void {
  if (v.has('id'))
    v.error(
      'a sidecar_service cannot set its id: the agent names it "<service id>-sidecar-proxy"',
      'id',
    );
  const kind = v.get('kind');
  if (typeof kind === 'string' && kind !== '' && kind !== 'connect-proxy') {
    v.error('a sidecar_service is always a "connect-proxy"', 'kind');
  }
}

function connectSchema(): Schema {
  return schema(
    [
      field('native', t.bool(), { out: 'Native' }),
      field('sidecar_service', t.object(schema(serviceFields(true), sidecarRules)), {
        out: 'SidecarService',
      }),
    ],
    (v) => {
      if (v.get('native') === true && v.has('sidecar_service')) {
        v.error('cannot be combined with native = true', 'sidecar_service');
      }
    },
  );
}

function serviceRules(v: ObjectView): void {
  if (v.get('kind') !== 'connect-proxy') return;
  const proxy = v.get('proxy') as { DestinationServiceName?: string } | undefined;
  if (!v.has('proxy')) {
    v.error(
      'missing required key (a "connect-proxy" needs proxy.destination_service_name)',
      'proxy',
    );
  } else if (proxy && !proxy.DestinationServiceName) {
    v.error('destination_service_name is required when kind is "connect-proxy"', 'proxy');
  }
}

/** One service block, as the agent's register endpoint takes it. */
export const serviceSchema: Schema = schema(serviceFields(false), serviceRules);
/** A top-level (node or standalone) check. */
export const checkRegistrationSchema: Schema = checkSchema(true);

/** The top-level keys of a service definition file; reusable in larger (agent) schemas. */
export const serviceDefinitionFields: readonly FieldSpec[] = [
  field('service', t.block(serviceSchema), { out: 'service' }),
  field('services', t.listOf(t.object(serviceSchema)), { out: 'services' }),
  field('check', t.block(checkRegistrationSchema), { out: 'check' }),
  field('checks', t.listOf(t.object(checkRegistrationSchema)), { out: 'checks' }),
];

export const serviceDefinitionSchema: Schema = schema(serviceDefinitionFields);

/** What the schema decodes a service to, before the implicit parts are settled. */
type DecodedService = Omit<
  ServiceRegistration,
  'Check' | 'Checks' | 'Weights' | 'Connect' | 'Name' | 'Proxy' | 'TaggedAddresses'
> & {
  Name?: string;
  Check?: CheckType[];
  Checks?: CheckType[];
  Weights?: Partial<Weights>;
  Proxy?: Partial<ConnectProxyConfig>;
  TaggedAddresses?: Record<string, Partial<ServiceAddress>>;
  Connect?: { Native?: boolean; SidecarService?: DecodedService };
};

interface DecodedFile {
  service?: DecodedService[];
  services?: DecodedService[];
  check?: CheckRegistration[];
  checks?: CheckRegistration[];
}

/** A decoded item and where its definition starts. */
export interface Located<T> {
  value: T;
  file: string;
  pos: Position | undefined;
}

export interface LocatedDefinitions {
  services: Located<ServiceRegistration>[];
  checks: Located<CheckRegistration>[];
  errors: ConfigDiagnostic[];
}

/** Decodes a parsed service definition file; see parseServiceDefinitions for the text form. */
export function decodeServiceDefinitionsAt(
  root: ValueNode | undefined,
  file: string,
): LocatedDefinitions {
  return locateDefinitions(decode(root, serviceDefinitionSchema, { file }), file);
}

/** The definitions of a file decoded with a schema that includes serviceDefinitionFields. */
export function locateDefinitions(result: DecodeResult<object>, file: string): LocatedDefinitions {
  const { positions } = result;
  const value = result.value as DecodedFile;
  const errors = sortDiagnostics([
    ...result.errors,
    ...(value.service ?? []).flatMap((s) => upstreamProblems(s, 'service', positions, file)),
    ...(value.services ?? []).flatMap((s, i) =>
      upstreamProblems(s, `services[${i}]`, positions, file),
    ),
  ]);
  const services = [...(value.service ?? []), ...(value.services ?? [])].map((s) => ({
    value: finishService(s, undefined),
    file,
    pos: positions.get(s),
  }));
  const checks = [...(value.check ?? []), ...(value.checks ?? [])].map((c) => ({
    value: c,
    file,
    pos: positions.get(c),
  }));
  return { services, checks, errors };
}

/**
 * What the agent would refuse about a proxy's upstreams, found here to point at the upstream:
 * two listening on one address and port, two for one destination, one on the proxy's port.
 */
function upstreamProblems(
  s: DecodedService,
  at: string,
  positions: WeakMap<object, Position>,
  file: string,
): ConfigDiagnostic[] {
  const out: ConfigDiagnostic[] = [];
  const check = (proxy: DecodedService, path: string): void => {
    const listeners = new Map<string, number>();
    const destinations = new Map<string, number>();
    (proxy.Proxy?.Upstreams ?? []).forEach((u, i) => {
      const pos = positions.get(u);
      const report = (key: string, message: string): void => {
        out.push({
          file,
          line: pos?.line ?? 0,
          column: pos?.column ?? 0,
          key: `${path}.upstreams[${i}].${key}`,
          message,
        });
      };
      if (u.LocalBindPort !== undefined) {
        const addr = `${u.LocalBindAddress || DEFAULT_BIND_ADDRESS}:${u.LocalBindPort}`;
        const first = listeners.get(addr);
        if (first !== undefined)
          report('local_bind_port', `${addr} is already the listener of upstreams[${first}]`);
        else listeners.set(addr, i);
        if (proxy.Port && u.LocalBindPort === proxy.Port)
          report('local_bind_port', `${u.LocalBindPort} is the proxy's own port; choose another`);
      }
      if (u.DestinationName !== undefined) {
        const dest = [u.DestinationType || 'service', u.DestinationName, u.Datacenter ?? ''].join(
          '/',
        );
        const same = destinations.get(dest);
        if (same !== undefined)
          report('destination_name', `"${u.DestinationName}" is already upstreams[${same}]`);
        else destinations.set(dest, i);
      }
    });
  };
  if (s.Kind === 'connect-proxy') check(s, `${at}.proxy`);
  const sidecar = s.Connect?.SidecarService;
  if (sidecar) check(sidecar, `${at}.connect.sidecar_service.proxy`);
  return out;
}

/**
 * Settles what the file leaves implicit, as the Consul agent does on registration: one `check`
 * block stays `Check`, several join `Checks`; partial weights get the default of 1; a tagged
 * address without a port gets 0; a sidecar gets `<name>-sidecar-proxy` and proxies its parent.
 */
function finishService(d: DecodedService, parent: string | undefined): ServiceRegistration {
  const { Check, Checks, Weights: weights, Connect, Name, Proxy, TaggedAddresses, ...rest } = d;
  const out: ServiceRegistration = { Name: Name ?? `${parent}-sidecar-proxy`, ...rest };
  if (Check?.length === 1) out.Check = Check[0];
  const many = [...(Check && Check.length > 1 ? Check : []), ...(Checks ?? [])];
  if (many.length > 0) out.Checks = many;
  if (weights) out.Weights = { Passing: weights.Passing ?? 1, Warning: weights.Warning ?? 1 };
  if (TaggedAddresses) {
    out.TaggedAddresses = {};
    for (const [tag, a] of Object.entries(TaggedAddresses)) {
      out.TaggedAddresses[tag] = { Address: a.Address ?? '', Port: a.Port ?? 0 };
    }
  }
  if (Proxy) {
    // Gateways carry proxy config with no destination (a connect-proxy must name one).
    const destination = Proxy.DestinationServiceName ?? parent ?? '';
    out.Proxy = { ...Proxy, DestinationServiceName: destination };
  }
  if (Connect) {
    const connect: ServiceConnect = {};
    if (Connect.Native !== undefined) connect.Native = Connect.Native;
    if (Connect.SidecarService) {
      connect.SidecarService = finishService(Connect.SidecarService, out.Name);
    }
    out.Connect = connect;
  }
  return out;
}
