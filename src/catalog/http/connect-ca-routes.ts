/**
 * The CA over HTTP: Consul's /v1/connect/ca/roots and /configuration, and the Trellis
 * endpoints agents use to get certificates signed (their key never leaves their host: they send
 * a CSR) and new hosts use to join.
 *
 * Who may get a service leaf: the caller's token needs service:write on the service, AND the
 * service must be registered on the node of the agent asking, proven by the agent's own
 * credential (its client certificate or its agent token). The certificate's identity comes from
 * the catalog record; the CSR contributes only its public key.
 */
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { canonicalize, isObject, NAME_RE, str } from '../../api/index.js';
import { badRequest, MeshError, notFound } from '../../core/index.js';
import {
  checkDatacenter,
  flag,
  jsonBody,
  query,
  route,
  sendJSON,
} from '../../httpkit/consul-http.js';
import { requestActor } from '../../httpkit/audit.js';
import { parseSpiffeId } from '../../policy/index.js';
import { hashSecret } from '../acl/resolver.js';
import { K } from '../state/index-table.js';
import type { AclTokenRow } from '../state/acl-table.js';
import { caConfigUpdate } from '../connect/ca-config.js';
import { newToken } from './acl-routes.js';
import { authz, denied, requireGlobal, requireNamed } from './authz.js';
import type { CatalogContext } from './context.js';
import { blockingRead } from './read.js';
import { propose } from './write.js';

const AGENT_TOKEN_HEADER = 'x-trellis-agent-token';

function tooMany(node: string): MeshError {
  return new MeshError(
    'MESH_ERR_RATE_LIMITED',
    'user',
    `Rate limit reached: too many certificate requests from node "${node}"; retry later`,
    { status: 429 },
  );
}

/** The node an mTLS client certificate proves, when the TLS layer verified it against our roots. */
export function certifiedNode(ctx: CatalogContext, req: FastifyRequest): string | undefined {
  const sock = req.raw.socket as Partial<TLSSocket>;
  if (!sock.encrypted || !sock.authorized || typeof sock.getPeerCertificate !== 'function')
    return undefined;
  const cert = sock.getPeerCertificate();
  const sans = (cert.subjectaltname ?? '').split(', ').filter((s) => s.startsWith('URI:'));
  if (sans.length !== 1) return undefined;
  const id = parseSpiffeId(sans[0]!.slice(4));
  if (id?.kind !== 'agent' || id.datacenter !== ctx.datacenter) return undefined;
  if (id.trustDomain !== ctx.state.ca.trustDomain) return undefined;
  return id.node;
}

/** Whether the agent making this request may act for `node`. */
function agentActsFor(ctx: CatalogContext, req: FastifyRequest, node: string): boolean {
  if (certifiedNode(ctx, req) === node) return true;
  // No agent credential at all is the anonymous token: enough only where the default allows.
  const h = req.headers[AGENT_TOKEN_HEADER];
  return ctx.acl.resolve(typeof h === 'string' ? h : '').allowed('node', node, 'write');
}

function csrOf(o: Record<string, unknown>): string {
  const csr = str(o, 'CSR', '');
  if (!csr) throw badRequest('CSR: missing (a PEM certificate request)', 'CSR');
  return csr;
}

export function connectCaRoutes(app: FastifyInstance, ctx: CatalogContext): void {
  const ca = ctx.ca;

  route(app, ['GET'], '/v1/connect/ca/roots', async (req, reply) => {
    const q = query(req);
    checkDatacenter(q, ctx.datacenter);
    const r = await blockingRead(ctx, req, reply, () => ({
      value: ctx.state.ca.roots,
      index: Math.max(1, ctx.state.indexes.get(K.caRoots)),
      watch: { keys: [K.caRoots] },
    }));
    if (flag(q, 'pem')) {
      reply.type('application/pem-certificate-chain');
      return reply.send(r.value.map((x) => x.RootCert).join(''));
    }
    const active = r.value.find((x) => x.Active);
    return sendJSON(reply, {
      ActiveRootID: active?.ID ?? '',
      TrustDomain: ctx.state.ca.trustDomain,
      Roots: r.value.map((x) => ({
        ID: x.ID,
        Name: x.Name,
        SerialNumber: x.SerialNumber,
        SigningKeyID: x.SigningKeyID,
        ExternalTrustDomain: x.ExternalTrustDomain,
        NotBefore: x.NotBefore,
        NotAfter: x.NotAfter,
        RootCert: x.RootCert,
        IntermediateCerts: x.IntermediateCerts,
        Active: x.Active,
        PrivateKeyType: x.PrivateKeyType,
        PrivateKeyBits: x.PrivateKeyBits,
        ...(x.SuccessorCrossCert ? { TrellisSuccessorCrossCert: x.SuccessorCrossCert } : {}),
        CreateIndex: x.CreateIndex,
        ModifyIndex: x.ModifyIndex,
      })),
    });
  });

  route(app, ['GET', 'PUT'], '/v1/connect/ca/configuration', async (req, reply) => {
    const a = authz(ctx, req);
    const st = ctx.state.ca;
    if (req.method === 'GET') {
      requireGlobal(a, 'operator', 'read');
      await blockingRead(ctx, req, reply, () => ({
        value: null,
        index: Math.max(1, ctx.state.indexes.get(K.caConfig)),
        watch: { keys: [K.caConfig] },
      }));
      return sendJSON(reply, {
        Provider: 'consul',
        Config: st.config,
        State: null,
        ForceWithoutCrossSigning: false,
        CreateIndex: st.configCreateIndex,
        ModifyIndex: st.configIndex,
      });
    }
    requireGlobal(a, 'operator', 'write');
    const update = caConfigUpdate(jsonBody(req), st.config);
    const actor = requestActor(req, a.accessor);
    if (update.imported) await ca.rotate(update.imported, actor);
    await ca.setConfig(update.config, actor);
    return sendJSON(reply, true);
  });

  // Trellis: rotate to a freshly generated root now (`trellis ca rotate`).
  route(app, ['PUT'], '/v1/internal/trellis/ca/rotate', async (req, reply) => {
    const a = authz(ctx, req);
    requireGlobal(a, 'operator', 'write');
    const root = await ca.rotate(undefined, requestActor(req, a.accessor));
    return sendJSON(reply, { ActiveRootID: root.ID });
  });

  route(app, ['PUT'], '/v1/internal/trellis/connect/sign', async (req, reply) => {
    const a = authz(ctx, req);
    const raw = jsonBody(req);
    if (!isObject(raw)) throw badRequest('Request body must be a JSON object', 'body');
    const o = canonicalize(raw, ['Service', 'Node', 'CSR']);
    const service = str(o, 'Service', '');
    const node = str(o, 'Node', '');
    if (!NAME_RE.test(service))
      throw badRequest(`Service: "${service.slice(0, 64)}" is not a valid service name`, 'Service');
    if (!NAME_RE.test(node))
      throw badRequest(`Node: "${node.slice(0, 64)}" is not a valid node name`, 'Node');
    const csr = csrOf(o);
    requireNamed(a, 'service', service, 'write');
    if (!agentActsFor(ctx, req, node))
      throw denied(a, "node:write (the calling agent's own credential)", node);
    if (!hostsService(ctx, node, service))
      throw new MeshError(
        'MESH_ERR_PERMISSION_DENIED',
        'user',
        `Permission denied: service "${service}" is not registered on node "${node}"`,
        { status: 403 },
      );
    if (!(await ctx.signing.take(node, ctx.state.ca.config.CSRMaxPerSecond, ctx.clock.now())))
      throw tooMany(node);
    return sendJSON(reply, await ca.signService(service, csr, requestActor(req, a.accessor)));
  });

  // An agent renews its own certificate with its certificate or its agent token.
  route(app, ['PUT'], '/v1/internal/trellis/connect/sign-agent', async (req, reply) => {
    const raw = jsonBody(req);
    if (!isObject(raw)) throw badRequest('Request body must be a JSON object', 'body');
    const o = canonicalize(raw, ['Node', 'CSR']);
    const node = str(o, 'Node', '');
    if (!NAME_RE.test(node))
      throw badRequest(`Node: "${node.slice(0, 64)}" is not a valid node name`, 'Node');
    const csr = csrOf(o);
    const a = authz(ctx, req);
    if (certifiedNode(ctx, req) !== node && !a.allowed('node', node, 'write'))
      throw denied(a, 'node:write', node);
    if (!(await ctx.signing.take(node, ctx.state.ca.config.CSRMaxPerSecond, ctx.clock.now())))
      throw tooMany(node);
    const cert = await ca.signAgent(node, csr, requestActor(req, a.accessor));
    return sendJSON(reply, { ...cert, Roots: ca.rootsPem() });
  });

  // A new host trades a single-use join token for its agent token and certificate.
  route(app, ['PUT'], '/v1/internal/trellis/join', async (req, reply) => {
    const raw = jsonBody(req);
    if (!isObject(raw)) throw badRequest('Request body must be a JSON object', 'body');
    const o = canonicalize(raw, ['JoinToken', 'Node', 'CSR']);
    const secret = str(o, 'JoinToken', '');
    const node = str(o, 'Node', '');
    if (!NAME_RE.test(node))
      throw badRequest(`Node: "${node.slice(0, 64)}" is not a valid node name`, 'Node');
    const csr = csrOf(o);
    const join = secret ? ctx.state.acl.tokenBySecretHash(hashSecret(secret)) : undefined;
    const refuse = (m: string): MeshError =>
      new MeshError('MESH_ERR_JOIN', 'user', m, { status: 403 });
    if (!join?.Join) throw refuse('join token not found');
    if (join.Join.UsedAt) throw refuse('join token was already used');
    if (join.ExpirationTime && Date.parse(join.ExpirationTime) <= ctx.clock.now())
      throw refuse('join token has expired');
    if (join.Join.Node && join.Join.Node !== node)
      throw new MeshError(
        'MESH_ERR_JOIN',
        'user',
        `join token is for node "${join.Join.Node}", not "${node}"`,
        { status: 403 },
      );
    // Sign first (it checks the CSR), then spend the token: a bad CSR does not burn it.
    const cert = await ca.signAgent(node, csr, requestActor(req, join.AccessorID));
    const agentSecret = ctx.newId();
    const token = (await propose(ctx, {
      type: 'acl-join-redeem',
      joinAccessor: join.AccessorID,
      at: ctx.clock.now(),
      token: newToken(ctx, agentSecret, {
        Description: `agent token for ${node} (joined ${new Date(ctx.clock.now()).toISOString()})`,
        NodeIdentities: [{ NodeName: node, Datacenter: ctx.datacenter }],
        ServiceIdentities: join.ServiceIdentities,
        Policies: join.Policies,
      }),
    })) as AclTokenRow;
    ctx.log.info({ node, accessor: token.AccessorID }, 'host joined');
    return sendJSON(reply, {
      AgentToken: agentSecret,
      AgentTokenAccessor: token.AccessorID,
      Cert: cert,
      Roots: ca.rootsPem(),
      TrustDomain: ctx.state.ca.trustDomain,
      Datacenter: ctx.datacenter,
    });
  });

  route(app, ['GET'], '/v1/internal/trellis/connect/fingerprint', async (_req, reply) => {
    const fp = ca.fingerprint();
    if (!fp) throw notFound('the CA is not initialized yet');
    return sendJSON(reply, { CAFingerprint: fp });
  });
}

/** The node runs the service itself, or a proxy for it. */
function hostsService(ctx: CatalogContext, node: string, service: string): boolean {
  const byId = ctx.state.catalog.servicesByNode.get(node);
  if (!byId) return false;
  for (const row of byId.values()) {
    const s = row.svc;
    if (s.Service === service) return true;
    if (s.Kind === 'connect-proxy' && s.Proxy?.DestinationServiceName === service) return true;
  }
  return false;
}
