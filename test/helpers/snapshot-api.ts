/**
 * HTTP calls the snapshot tests share: a management token, a fixed set of catalog data to save,
 * and a fingerprint of that data to compare before and after a restore.
 */
import { expect } from 'chai';

export interface Reply {
  status: number;
  index: number;
  text: string;
  json: unknown;
  bytes: Buffer;
}

export async function call(
  address: string,
  method: string,
  path: string,
  opts: { token?: string; body?: string | Buffer } = {},
): Promise<Reply> {
  const r = await fetch(`http://${address}${path}`, {
    method,
    headers: opts.token ? { 'x-consul-token': opts.token } : {},
    ...(opts.body !== undefined ? { body: opts.body } : {}),
  });
  const bytes = Buffer.from(await r.arrayBuffer());
  const text = bytes.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return {
    status: r.status,
    index: Number(r.headers.get('x-consul-index') ?? 0),
    text,
    json,
    bytes,
  };
}

export async function bootstrap(address: string): Promise<string> {
  const r = await call(address, 'PUT', '/v1/acl/bootstrap');
  expect(r.status, r.text).to.equal(200);
  return (r.json as { SecretID: string }).SecretID;
}

/** Registers a service, writes KV keys, an intention and an ACL token. */
export async function seed(address: string, token: string): Promise<void> {
  const ok = async (method: string, path: string, body?: unknown): Promise<void> => {
    const r = await call(address, method, path, {
      token,
      ...(body === undefined
        ? {}
        : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    expect(r.status, `${method} ${path}: ${r.text}`).to.equal(200);
  };
  await ok('PUT', '/v1/catalog/register', {
    Node: 'web-host',
    Address: '127.0.0.2',
    Service: { ID: 'web-1', Service: 'web', Port: 8080, Tags: ['v1'] },
  });
  await ok('PUT', '/v1/kv/app/color', 'blue');
  await ok('PUT', '/v1/kv/app/size', 'large');
  await ok('PUT', '/v1/connect/intentions/exact?source=web&destination=db', { Action: 'allow' });
  await ok('PUT', '/v1/acl/token', { Description: 'saved-token', SecretID: SAVED_SECRET });
}

export const SAVED_SECRET = '6f1c2a54-6a0e-4c3b-9d7e-4b5f3b2a1c00';

/** What seed() wrote, as read back: the same on every server holding the same state. */
export async function fingerprint(address: string, token: string): Promise<unknown> {
  const get = async (path: string): Promise<Reply> => call(address, 'GET', path, { token });
  const svc = await get('/v1/catalog/service/web');
  const kv = await get('/v1/kv/app/?recurse');
  const ixn = await get('/v1/connect/intentions/exact?source=web&destination=db');
  const saved = await call(address, 'GET', '/v1/acl/token/self', { token: SAVED_SECRET });
  return {
    services: (
      (svc.json as { Node: string; ServiceID: string; ServiceTags: string[] }[]) ?? []
    ).map((s) => `${s.Node}/${s.ServiceID}/${s.ServiceTags.join(',')}`),
    kv:
      kv.status === 404
        ? []
        : (kv.json as { Key: string; Value: string }[]).map(
            (e) => `${e.Key}=${Buffer.from(e.Value ?? '', 'base64').toString()}`,
          ),
    intention: ixn.status === 200 ? (ixn.json as { Action: string }).Action : `HTTP ${ixn.status}`,
    savedToken:
      saved.status === 200
        ? (saved.json as { Description: string }).Description
        : `HTTP ${saved.status}`,
  };
}

/** Changes everything seed() wrote (and adds a key), so a restore has something to undo. */
export async function scramble(address: string, token: string): Promise<void> {
  const ok = async (method: string, path: string, body?: string): Promise<void> => {
    const r = await call(address, method, path, { token, ...(body ? { body } : {}) });
    expect(r.status, `${method} ${path}: ${r.text}`).to.equal(200);
  };
  await ok('PUT', '/v1/catalog/deregister', JSON.stringify({ Node: 'web-host' }));
  await ok('PUT', '/v1/kv/app/color', 'red');
  await ok('DELETE', '/v1/kv/app/size');
  await ok('PUT', '/v1/kv/app/added-later', 'x');
  await ok('DELETE', '/v1/connect/intentions/exact?source=web&destination=db');
  const self = await call(address, 'GET', '/v1/acl/token/self', { token: SAVED_SECRET });
  const accessor = (self.json as { AccessorID: string }).AccessorID;
  await ok('DELETE', `/v1/acl/token/${accessor}`);
}
