/**
 * CA private keys of servers on etcd: kept in etcd only AES-256-GCM encrypted with the key of
 * --ca-encryption-key-file (real etcd members, real `trellis server` processes). Raw etcd holds
 * no PEM and no key bytes; a root rotated through one server signs on another; a wrong, missing
 * or malformed key file stops the start with one line naming the file; a key left as a file by
 * an earlier version is uploaded (encrypted) once.
 */
import { expect } from 'chai';
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import {
  keyId,
  openCaKey,
  parseCaEncryptionKey,
} from '../../../src/catalog/connect/key-sealing.js';
import { createCsr } from '../../../src/pki/index.js';
import { agentSpiffeId } from '../../../src/policy/index.js';
import {
  etcdClusterOrSkip,
  writeCaEncryptionKey,
  type EtcdCluster,
} from '../../helpers/etcd-cluster.js';
import {
  eventually,
  startServerProcess,
  startTrellis,
  tempDirs,
  type TrellisProcess,
} from '../../helpers/trellis-process.js';

interface Roots {
  ActiveRootID: string;
  TrustDomain: string;
  Roots: { ID: string; RootCert: string; Active: boolean }[];
}

async function roots(s: TrellisProcess): Promise<Roots> {
  return (await (await fetch(`http://${s.address}/v1/connect/ca/roots`)).json()) as Roots;
}

/** The DER bytes inside a PEM. */
function derOf(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

/** No value holds a private key, nor `pem`'s key bytes (raw, PKCS#8, base64 or hex). */
function expectNoKeyIn(all: Record<string, Buffer>, pem: string): void {
  const der = derOf(pem);
  const pkcs8 = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  const forms = [der, pkcs8, Buffer.from(der.toString('base64')), Buffer.from(der.toString('hex'))];
  for (const [key, value] of Object.entries(all)) {
    // Root certificates (public) are in the log; no private key may be.
    expect(value.toString('latin1'), key).to.not.include('PRIVATE KEY');
    for (const f of forms) expect(value.indexOf(f), `${key} holds the key`).to.equal(-1);
  }
}

/** A start that must fail: its exit code and everything it printed. */
async function failedStart(args: string[]): Promise<string> {
  const err = await startTrellis(args, { timeoutMs: 60_000 }).then(
    async (p) => {
      await p.stop();
      return undefined;
    },
    (e: Error) => e,
  );
  expect(err, 'the server must not start').to.be.instanceOf(Error);
  return err!.message;
}

describe('catalog on etcd: CA private keys in etcd, encrypted', function () {
  this.timeout(180_000);
  const dirs = tempDirs();
  let etcd: EtcdCluster | undefined;
  let client: Etcd3 | undefined;
  let keyFile = '';
  const running: TrellisProcess[] = [];

  const etcdArgs = (prefix: string, file: string): string[] => [
    ...['--store', 'etcd', '--etcd-endpoints', etcd!.endpoints, '--etcd-prefix', prefix],
    ...['--ca-encryption-key-file', file],
  ];
  const start = async (dir: string, node: string, args: string[]): Promise<TrellisProcess> => {
    const s = await startServerProcess(dir, node, args, { timeoutMs: 30_000 });
    running.push(s);
    return s;
  };

  before(async function () {
    etcd = await etcdClusterOrSkip(this, 3);
    client = new Etcd3({ hosts: etcd.endpoints.split(',') });
    keyFile = writeCaEncryptionKey(dirs.make('ca-enc-key'));
  });

  after(async () => {
    for (const s of running) await s.stop();
    client?.close();
    await etcd?.destroy();
    dirs.removeAll();
  });

  let a: TrellisProcess;
  let b: TrellisProcess;
  let dirA = '';

  it('raw etcd values hold no PEM and no key bytes in the clear; no key file on disk', async () => {
    // HTTPS on (the default): each server signs its own API certificate with the CA key.
    dirA = dirs.make('ca-a');
    a = await start(dirA, 'srv-a', etcdArgs('/ca', keyFile));
    b = await start(dirs.make('ca-b'), 'srv-b', etcdArgs('/ca', keyFile));
    const r = await roots(a);
    const all = await client!.getAll().prefix('/ca/').buffers();
    const stored = all[`/ca/ca-keys/${r.ActiveRootID}`];
    expect(stored, 'the active root key is stored in etcd').to.be.instanceOf(Buffer);
    // The test holds the key file, so it can see what the ciphertext hides.
    const pem = openCaKey(
      parseCaEncryptionKey(readFileSync(keyFile, 'utf8')),
      r.ActiveRootID,
      stored!,
    );
    expect(pem).to.include('PRIVATE KEY');
    expectNoKeyIn(all, pem);
    console.log(`      ${Object.keys(all).length} values under /ca/ checked`);
    expect(existsSync(join(dirA, 'catalog', 'ca-keys'))).to.equal(false);
  });

  it('a root rotated through A signs leaves on B (B decrypts the new key from etcd)', async () => {
    const before = (await roots(a)).ActiveRootID;
    const rot = await fetch(`http://${a.address}/v1/internal/trellis/ca/rotate`, { method: 'PUT' });
    expect(rot.status).to.equal(200);
    const { ActiveRootID } = (await rot.json()) as { ActiveRootID: string };
    expect(ActiveRootID).to.not.equal(before);
    const onB = await eventually(async () => {
      const r = await roots(b);
      return r.ActiveRootID === ActiveRootID ? r : undefined;
    });
    const sealed = (await client!.get(`/ca/ca-keys/${ActiveRootID}`).buffer())!;
    const newPem = openCaKey(
      parseCaEncryptionKey(readFileSync(keyFile, 'utf8')),
      ActiveRootID,
      sealed,
    );
    expectNoKeyIn(await client!.getAll().prefix('/ca/').buffers(), newPem);

    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const csr = createCsr(privateKey, agentSpiffeId(onB.TrustDomain, 'dc1', 'host-1'));
    const res = await fetch(`http://${b.address}/v1/internal/trellis/connect/sign-agent`, {
      method: 'PUT',
      body: JSON.stringify({ Node: 'host-1', CSR: csr }),
    });
    expect(res.status, await res.clone().text()).to.equal(200);
    const cert = (await res.json()) as { CertPEM: string; RootID: string };
    expect(cert.RootID).to.equal(ActiveRootID);
    const root = onB.Roots.find((x) => x.ID === ActiveRootID)!;
    const leaf = new X509Certificate(cert.CertPEM);
    expect(leaf.verify(new X509Certificate(root.RootCert).publicKey)).to.equal(true);
  });

  it('the encryption key is changed server by server: values re-encrypted once, then the old key is not needed', async () => {
    const kidOf = (v: Buffer): string => (JSON.parse(v.toString()) as { kid: string }).kid;
    const newKeyFile = writeCaEncryptionKey(dirs.make('ca-new-key'));
    const newKid = keyId(parseCaEncryptionKey(readFileSync(newKeyFile, 'utf8')));
    const oldKid = keyId(parseCaEncryptionKey(readFileSync(keyFile, 'utf8')));
    const sealed = async (): Promise<Buffer[]> =>
      Object.values(await client!.getAll().prefix('/ca/ca-keys/').buffers());
    // Two roots by now (the test above rotated): both sealed with the old key.
    expect((await sealed()).map(kidOf)).to.deep.equal([oldKid, oldKid]);

    // A restarted with the new key and the old one as previous: it opens both and seals them
    // again with the new key. B, still on the old key, keeps signing with what it loaded.
    await a.stop();
    a = await start(dirA, 'srv-a', [
      ...etcdArgs('/ca', newKeyFile),
      ...['--ca-encryption-previous-key-file', keyFile],
    ]);
    expect(a.output()).to.include('encrypted again with the current key');
    expect((await sealed()).map(kidOf)).to.deep.equal([newKid, newKid]);
    const signOn = async (s: TrellisProcess, node: string): Promise<number> => {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const td = (await roots(s)).TrustDomain;
      const res = await fetch(`http://${s.address}/v1/internal/trellis/connect/sign-agent`, {
        method: 'PUT',
        body: JSON.stringify({
          Node: node,
          CSR: createCsr(privateKey, agentSpiffeId(td, 'dc1', node)),
        }),
      });
      return res.status;
    };
    expect(await signOn(a, 'host-2')).to.equal(200);
    expect(await signOn(b, 'host-3')).to.equal(200);

    // B restarted with only the new key: nothing is left that needs the old one.
    const revs = (await client!.getAll().prefix('/ca/ca-keys/').exec()).kvs.map(
      (kv) => kv.mod_revision,
    );
    await b.stop();
    b = await start(dirs.make('ca-b2'), 'srv-b', etcdArgs('/ca', newKeyFile));
    expect(b.output()).to.not.include('encrypted again');
    expect(
      (await client!.getAll().prefix('/ca/ca-keys/').exec()).kvs.map((kv) => kv.mod_revision),
    ).to.deep.equal(revs);
    expect(await signOn(b, 'host-4')).to.equal(200);

    // The old key alone no longer opens the cluster's CA keys, and says which keys are involved.
    const out = await failedStart([
      'server',
      ...['--data-dir', dirs.make('ca-old-only'), '--bind', '127.0.0.1:0', '--https-bind', 'off'],
      ...etcdArgs('/ca', keyFile),
    ]);
    expect(out).to.include(`cannot be decrypted with the key in ${keyFile}`);
    expect(out).to.include(
      `it was encrypted with key ${newKid}, and the key file holds key ${oldKid}`,
    );
    // A previous key file that is not a key is refused like the current one, naming it.
    const junk = join(dirs.make('ca-junk'), 'junk.key');
    writeFileSync(junk, 'not a key');
    const refused = await failedStart([
      'server',
      ...['--data-dir', dirs.make('ca-junk-dir'), '--bind', '127.0.0.1:0', '--https-bind', 'off'],
      ...etcdArgs('/ca', newKeyFile),
      ...['--ca-encryption-previous-key-file', junk],
    ]);
    expect(refused).to.match(/exited with 2/);
    expect(refused).to.include(`previous CA encryption key file`);
    expect(refused).to.include(`${junk}: it is not base64`);
    // Later tests use the new key.
    keyFile = newKeyFile;
  });

  it('a wrong key file stops the start with one line naming the file', async () => {
    const wrong = writeCaEncryptionKey(dirs.make('ca-wrong-key'));
    const out = await failedStart([
      'server',
      ...['--data-dir', dirs.make('ca-wrong'), '--bind', '127.0.0.1:0', '--https-bind', 'off'],
      ...etcdArgs('/ca', wrong),
    ]);
    console.log(`      ${out.split('\n').slice(1).join('\n      ')}`);
    expect(out).to.match(/exited with [12]/);
    expect(out).to.include(`cannot be decrypted with the key in ${wrong}`);
    expect(out).to.match(/it was encrypted with key [0-9a-f]{16}, and the key file holds key/);
    expect(out).to.not.match(/\n\s+at /); // no stack trace
  });

  it('no key file, or one that is not 32 bytes of base64, is refused at start', async () => {
    const base = [
      'server',
      ...['--data-dir', dirs.make('ca-nokey'), '--bind', '127.0.0.1:0', '--https-bind', 'off'],
      ...['--store', 'etcd', '--etcd-endpoints', etcd!.endpoints, '--etcd-prefix', '/ca'],
    ];
    const none = await failedStart(base);
    expect(none).to.match(/exited with 2/);
    expect(none).to.include('needs --ca-encryption-key-file');
    const short = join(dirs.make('ca-short'), 'short.key');
    writeFileSync(short, Buffer.alloc(16, 7).toString('base64'));
    const bad = await failedStart([...base, '--ca-encryption-key-file', short]);
    expect(bad).to.include(`${short}: it decodes to 16 bytes, not 32`);
    const missing = join(dirs.make('ca-missing'), 'nope.key');
    expect(await failedStart([...base, '--ca-encryption-key-file', missing])).to.include(missing);
    for (const out of [none, bad]) expect(out).to.not.match(/\n\s+at /);
  });

  it('a key left as a file by an earlier version is uploaded, encrypted, once', async () => {
    // A cluster as step 1 left it: the root key only in <data-dir>/catalog/ca-keys.
    const dir = dirs.make('ca-legacy');
    const first = await start(dir, 'srv-l', etcdArgs('/legacy', keyFile));
    const { ActiveRootID } = await roots(first);
    await first.stop();
    const etcdKey = `/legacy/ca-keys/${ActiveRootID}`;
    const pem = openCaKey(
      parseCaEncryptionKey(readFileSync(keyFile, 'utf8')),
      ActiveRootID,
      (await client!.get(etcdKey).buffer())!,
    );
    mkdirSync(join(dir, 'catalog', 'ca-keys'), { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, 'catalog', 'ca-keys', `${ActiveRootID.replace(/:/g, '')}.key`), pem, {
      mode: 0o600,
    });
    await client!.delete().key(etcdKey);

    const upgraded = await start(dir, 'srv-l', etcdArgs('/legacy', keyFile));
    const uploads = (t: string): number => t.split('uploaded to etcd, encrypted').length - 1;
    expect(uploads(upgraded.output())).to.equal(1);
    const sealed = await client!.get(etcdKey).buffer();
    expect(sealed!.toString()).to.not.include('PRIVATE KEY');
    const key = parseCaEncryptionKey(readFileSync(keyFile, 'utf8'));
    expect(openCaKey(key, ActiveRootID, sealed!)).to.equal(pem);
    const rev = (await client!.get(etcdKey).exec()).kvs[0]!.mod_revision;
    await upgraded.stop();

    // Restarted: the key is in etcd now; nothing is uploaded again.
    const again = await start(dir, 'srv-l', etcdArgs('/legacy', keyFile));
    expect(uploads(again.output())).to.equal(0);
    expect((await client!.get(etcdKey).exec()).kvs[0]!.mod_revision).to.equal(rev);
  });
});
