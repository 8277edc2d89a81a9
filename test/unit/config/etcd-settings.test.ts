/**
 * The etcd store settings: `store` and the `etcd { ... }` block in config files (positions in
 * errors), the --store/--etcd-* flags, and the combinations refused because they have two
 * readings or none.
 */
import { expect } from 'chai';
import { UsageError } from '../../../src/cli/index.js';
import {
  decodeConfigFileAt,
  formatDiagnostic,
  mergeSettings,
  parseConfigFile,
  parseConfigText,
  type AgentSettings,
} from '../../../src/config/index.js';
import { resolveServer, unusedSettings, type DaemonFlags } from '../../../src/bin/settings.js';

function errorsOf(text: string, file = 'server.hcl'): string[] {
  return parseConfigFile(text, file).errors.map(formatDiagnostic);
}

function server(flags: DaemonFlags, file: AgentSettings = {}): ReturnType<typeof resolveServer> {
  return resolveServer({ dataDir: '/d', ...flags }, file);
}

function refused(flags: DaemonFlags, file: AgentSettings = {}): string {
  try {
    server(flags, file);
  } catch (err) {
    expect(err).to.be.instanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error('expected a UsageError');
}

describe('config/etcd settings', () => {
  it('decodes store and the etcd block', () => {
    const r = parseConfigFile(
      [
        'store = "etcd"',
        'etcd {',
        '  endpoints = ["https://10.0.0.5:2379", "https://10.0.0.6:2379"]',
        '  prefix = "/mesh/prod"',
        '  ca_file = "/etc/trellis/etcd-ca.pem"',
        '  cert_file = "/etc/trellis/etcd.pem"',
        '  key_file = "/etc/trellis/etcd-key.pem"',
        '  username = "trellis"',
        '}',
      ].join('\n'),
      'server.hcl',
    );
    expect(r.errors.map(formatDiagnostic)).to.deep.equal([]);
    expect(r.settings).to.deep.equal({
      store: 'etcd',
      etcdEndpoints: ['https://10.0.0.5:2379', 'https://10.0.0.6:2379'],
      etcdPrefix: '/mesh/prod',
      etcdCaFile: '/etc/trellis/etcd-ca.pem',
      etcdCertFile: '/etc/trellis/etcd.pem',
      etcdKeyFile: '/etc/trellis/etcd-key.pem',
      etcdUsername: 'trellis',
    });
  });

  it('reports bad values with file:line:column', () => {
    expect(errorsOf('store = "raft"')).to.deep.equal([
      'server.hcl:1:9: store: invalid value "raft": must be one of "embedded", "etcd"',
    ]);
    expect(errorsOf('etcd {\n  endpoints = ["10.0.0.5:2379"]\n}')).to.deep.equal([
      'server.hcl:2:16: etcd.endpoints[0]: invalid etcd endpoint "10.0.0.5:2379": use a client URL such as "https://10.0.0.5:2379"',
    ]);
    expect(errorsOf('etcd {\n  endpoints = []\n}')).to.have.length(1);
    expect(errorsOf('etcd {\n  prefix = "trellis/"\n}')[0]).to.match(
      /^server\.hcl:2:12: etcd\.prefix: invalid etcd prefix "trellis\/"/,
    );
    expect(errorsOf('etcd {\n  endpont = ["http://a:2379"]\n}')[0]).to.match(
      /^server\.hcl:2:3: etcd\.endpont: .*did you mean "endpoints"/,
    );
  });

  it('merges etcd keys per member across files, and names both places on a conflict', () => {
    const entries = (text: string, file: string) =>
      decodeConfigFileAt(parseConfigText(text, file).root, file).settings;
    const a = entries('etcd { endpoints = ["http://a:2379"] }', 'a.hcl');
    const b = entries('etcd { prefix = "/x" }', 'b.hcl');
    expect(mergeSettings([a, b]).settings).to.deep.equal({
      etcdEndpoints: ['http://a:2379'],
      etcdPrefix: '/x',
    });
    const merged = mergeSettings([b, entries('etcd { prefix = "/y" }', 'c.hcl')]);
    expect(merged.errors.map(formatDiagnostic)).to.deep.equal([
      'c.hcl:1:8: etcd.prefix: already set to "/x" at b.hcl:1:8',
    ]);
  });

  it('is a server setting: an agent ignores it', () => {
    expect(
      unusedSettings('agent', { store: 'etcd', etcdEndpoints: ['http://a:2379'] }),
    ).to.deep.equal(['store', 'etcd.endpoints']);
    expect(
      unusedSettings('server', { store: 'etcd', etcdEndpoints: ['http://a:2379'] }),
    ).to.deep.equal([]);
  });
});

describe('bin/settings: --store etcd', () => {
  it('defaults to the embedded store with no etcd settings', () => {
    expect(server({})).to.not.have.property('etcd');
    expect(server({ store: 'embedded' })).to.not.have.property('etcd');
  });

  it('takes endpoints and the prefix from flags over the file', () => {
    const file: AgentSettings = {
      store: 'etcd',
      etcdEndpoints: ['http://file:2379'],
      etcdPrefix: '/file',
      caEncryptionKeyFile: '/etc/trellis/ca.key',
    };
    expect(server({}, file).etcd).to.deep.equal({
      endpoints: ['http://file:2379'],
      prefix: '/file',
    });
    expect(server({ etcdEndpoints: ['http://flag:2379'] }, file).etcd).to.deep.equal({
      endpoints: ['http://flag:2379'],
      prefix: '/file',
    });
    expect(
      server({ store: 'etcd', etcdEndpoints: ['http://a:2379'], caEncryptionKeyFile: '/k' }).etcd,
    ).to.deep.equal({
      endpoints: ['http://a:2379'],
      prefix: '/trellis',
    });
  });

  it('takes the CA encryption key file from the flag over the file, and requires it', () => {
    const file: AgentSettings = {
      store: 'etcd',
      etcdEndpoints: ['http://a:2379'],
      caEncryptionKeyFile: '/file.key',
    };
    expect(server({}, file).caEncryptionKeyFile).to.equal('/file.key');
    expect(server({ caEncryptionKeyFile: '/flag.key' }, file).caEncryptionKeyFile).to.equal(
      '/flag.key',
    );
    expect(refused({ store: 'etcd', etcdEndpoints: ['http://a:2379'] })).to.equal(
      '--store "etcd" needs --ca-encryption-key-file (ca_encryption_key_file): a file with 32 random bytes in base64, the same on every server (make one with `openssl rand -base64 32`; docs/ha.md)',
    );
    expect(refused({ caEncryptionKeyFile: '/k' })).to.equal(
      '--ca-encryption-key-file is set but the store is "embedded": pass --store etcd (store = "etcd") or remove it',
    );
  });

  it('takes previous CA encryption key files from the flag over the file, only with etcd', () => {
    const r = parseConfigFile(
      'ca_encryption_previous_key_files = ["/etc/trellis/old.key"]\n',
      'server.hcl',
    );
    expect(r.errors.map(formatDiagnostic)).to.deep.equal([]);
    expect(r.settings).to.deep.equal({ caEncryptionPreviousKeyFiles: ['/etc/trellis/old.key'] });
    expect(errorsOf('ca_encryption_previous_key_files = []\n')).to.have.length(1);
    expect(errorsOf('ca_encryption_previous_key_files = []\n')[0]).to.match(/^server\.hcl:1:/);
    const file: AgentSettings = {
      store: 'etcd',
      etcdEndpoints: ['http://a:2379'],
      caEncryptionKeyFile: '/new.key',
      caEncryptionPreviousKeyFiles: ['/file-old.key'],
    };
    expect(server({}, file).caEncryptionPreviousKeyFiles).to.deep.equal(['/file-old.key']);
    expect(
      server({ caEncryptionPreviousKeyFiles: ['/a.key', '/b.key'] }, file)
        .caEncryptionPreviousKeyFiles,
    ).to.deep.equal(['/a.key', '/b.key']);
    expect(server({}, { ...file, caEncryptionPreviousKeyFiles: undefined })).to.not.have.property(
      'caEncryptionPreviousKeyFiles',
    );
    expect(refused({ caEncryptionPreviousKeyFiles: ['/old.key'] })).to.equal(
      '--ca-encryption-previous-key-file is set but the store is "embedded": pass --store etcd (store = "etcd") or remove it',
    );
    expect(unusedSettings('agent', { caEncryptionPreviousKeyFiles: ['/x'] })).to.deep.equal([
      'ca_encryption_previous_key_files',
    ]);
  });

  it('takes TLS files and a user when the password is in the environment', () => {
    const r = server({
      store: 'etcd',
      etcdEndpoints: ['https://a:2379', 'https://b:2379'],
      etcdCaFile: '/ca.pem',
      etcdCertFile: '/c.pem',
      etcdKeyFile: '/k.pem',
      etcdUsername: 'trellis',
      etcdPasswordSet: true,
      caEncryptionKeyFile: '/k',
    });
    expect(r.etcd).to.deep.equal({
      endpoints: ['https://a:2379', 'https://b:2379'],
      prefix: '/trellis',
      caFile: '/ca.pem',
      certFile: '/c.pem',
      keyFile: '/k.pem',
      username: 'trellis',
    });
    // The password itself never enters the settings (they are logged when they change).
    expect(JSON.stringify(r)).to.not.match(/password/i);
  });

  it('refuses bad flag values', () => {
    expect(refused({ store: 'etcd', etcdEndpoints: ['a:2379'] })).to.match(
      /^--etcd-endpoints: invalid etcd endpoint "a:2379"/,
    );
    expect(refused({ store: 'etcd', etcdEndpoints: ['http://a:2379'], etcdPrefix: '/' })).to.match(
      /^--etcd-prefix: invalid etcd prefix/,
    );
  });

  it('refuses etcd settings with the embedded store (two readings)', () => {
    expect(refused({ etcdEndpoints: ['http://a:2379'] })).to.equal(
      '--etcd-endpoints is set but the store is "embedded": pass --store etcd (store = "etcd") or remove it',
    );
    expect(
      refused({ store: 'embedded' }, { etcdEndpoints: ['http://a:2379'], etcdPrefix: '/p' }),
    ).to.equal(
      'etcd.endpoints, etcd.prefix are set but the store is "embedded": pass --store etcd (store = "etcd") or remove them',
    );
  });

  it('refuses an etcd store without endpoints', () => {
    expect(refused({ store: 'etcd' })).to.equal(
      '--store "etcd" needs etcd endpoints: pass --etcd-endpoints or set etcd.endpoints',
    );
    expect(refused({}, { store: 'etcd' })).to.match(/^store "etcd" needs etcd endpoints/);
  });

  it('refuses mixed schemes, TLS files with http:// and half a client certificate', () => {
    expect(refused({ store: 'etcd', etcdEndpoints: ['http://a:2379', 'https://b:2379'] })).to.match(
      /mixes http:\/\/ and https:\/\//,
    );
    expect(
      refused({ store: 'etcd', etcdEndpoints: ['http://a:2379'], etcdCaFile: '/ca.pem' }),
    ).to.equal(
      '--etcd-ca-file set but the etcd endpoints use http://: use https:// endpoints or remove the TLS files',
    );
    expect(
      refused({ store: 'etcd', etcdEndpoints: ['https://a:2379'] }, { etcdCertFile: '/c.pem' }),
    ).to.equal(
      'etcd.cert_file is set without --etcd-key-file / etcd.key_file: give its private key too',
    );
  });

  it('refuses a user without a password and a password without a user', () => {
    expect(
      refused({ store: 'etcd', etcdEndpoints: ['http://a:2379'], etcdUsername: 'u' }),
    ).to.equal(
      '--etcd-username is set but TRELLIS_ETCD_PASSWORD is not: put the etcd password in that environment variable',
    );
    expect(
      refused({ store: 'etcd', etcdEndpoints: ['http://a:2379'], etcdPasswordSet: true }),
    ).to.match(/^TRELLIS_ETCD_PASSWORD is set but no etcd user/);
  });
});
