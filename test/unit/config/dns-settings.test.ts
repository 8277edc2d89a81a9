/**
 * The agent's DNS settings (recursors, domain, dns_config) and the server's virtual_ip_range in
 * config-dir files, and how bin/settings resolves them with their flags.
 */
import { expect } from 'chai';
import { resolveAgent, resolveServer, unusedSettings } from '../../../src/bin/settings.js';
import { UsageError } from '../../../src/cli/index.js';
import {
  decodeConfigFileAt,
  formatDiagnostic,
  mergeSettings,
  parseConfigFile,
  parseConfigText,
} from '../../../src/config/index.js';
import { parseRecursorAddress } from '../../../src/config/dns-values.js';

const errorsOf = (text: string, file = 'a.hcl'): string[] =>
  parseConfigFile(text, file).errors.map(formatDiagnostic);

describe('config: DNS settings and virtual_ip_range', () => {
  it('decodes them, durations in ms', () => {
    const r = parseConfigFile(
      [
        'recursors = ["1.1.1.1", "10.0.0.2:5353", "[::1]:53", "fd00::2"]',
        'domain = "mesh.example"',
        'dns_config {',
        '  node_ttl = "10s"',
        '  service_ttl = { "*" = "5s", "api" = "1s", "web*" = "2500ms" }',
        '  only_passing = true',
        '  recursor_timeout = "500ms"',
        '}',
        'virtual_ip_range = "10.240.0.0/16"',
      ].join('\n'),
      'dns.hcl',
    );
    expect(r.errors.map(formatDiagnostic)).to.deep.equal([]);
    expect(r.settings).to.deep.equal({
      recursors: ['1.1.1.1', '10.0.0.2:5353', '[::1]:53', 'fd00::2'],
      domain: 'mesh.example',
      dnsNodeTtlMs: 10_000,
      dnsServiceTtlMs: { '*': 5000, api: 1000, 'web*': 2500 },
      dnsOnlyPassing: true,
      dnsRecursorTimeoutMs: 500,
      virtualIpRange: '10.240.0.0/16',
    });
  });

  it('reads Consul JSON spellings', () => {
    const r = parseConfigFile(
      '{"recursors": ["8.8.8.8"], "dns_config": {"NodeTTL": "1m", "OnlyPassing": false}}',
      'dns.json',
    );
    expect(r.errors.map(formatDiagnostic)).to.deep.equal([]);
    expect(r.settings).to.deep.equal({
      recursors: ['8.8.8.8'],
      dnsNodeTtlMs: 60_000,
      dnsOnlyPassing: false,
    });
  });

  it('reports bad values with file:line:column', () => {
    expect(
      errorsOf(
        [
          'recursors = ["dns.google", "1.2.3.4:0", "[::1"]',
          'domain = "bad domain"',
          'dns_config {',
          '  node_ttl = "ten"',
          '  service_ttl = { "a b" = "1s" }',
          '  only_pasing = true',
          '  recursor_timeout = "0s"',
          '}',
          'virtual_ip_range = "240.0.0.0/31"',
        ].join('\n'),
      ),
    ).to.deep.equal([
      'a.hcl:1:14: recursors[0]: invalid recursor "dns.google": use an IP address with an optional port, such as "10.0.0.2", "10.0.0.2:53" or "[fd00::2]:53"',
      'a.hcl:1:28: recursors[1]: invalid recursor "1.2.3.4:0": use an IP address with an optional port, such as "10.0.0.2", "10.0.0.2:53" or "[fd00::2]:53"',
      'a.hcl:1:41: recursors[2]: invalid recursor "[::1": use an IP address with an optional port, such as "10.0.0.2", "10.0.0.2:53" or "[fd00::2]:53"',
      'a.hcl:2:10: domain: invalid domain "bad domain": use DNS labels (letters, digits, "-", "_") separated by dots, such as "consul"',
      'a.hcl:4:14: dns_config.node_ttl: invalid duration "ten": use Go syntax such as "10s", "1m30s" or "500ms"',
      'a.hcl:5:19: dns_config.service_ttl["a b"]: invalid service_ttl key "a b": use a service name, a prefix ending in "*", or "*"',
      'a.hcl:6:3: dns_config.only_pasing: unknown key; did you mean "only_passing"?',
      'a.hcl:7:22: dns_config.recursor_timeout: must be longer than 0s',
      'a.hcl:9:20: virtual_ip_range: virtual IP range "240.0.0.0/31": use an IPv4 CIDR from /4 to /30',
    ]);
    expect(errorsOf('virtual_ip_range = "240.0.0.1/4"')).to.deep.equal([
      'a.hcl:1:20: virtual_ip_range: virtual IP range 240.0.0.1/4: the address has bits set past the /4 prefix',
    ]);
  });

  it('merges dns_config member by member across files, comparing durations by length', () => {
    const entries = (text: string, file: string) =>
      decodeConfigFileAt(parseConfigText(text, file).root, file).settings;
    const ok = mergeSettings([
      entries('dns_config { node_ttl = "10s" }', 'a.hcl'),
      entries('dns_config {\n  node_ttl = "10000ms"\n  only_passing = true\n}', 'b.hcl'),
    ]);
    expect(ok.errors).to.deep.equal([]);
    expect(ok.settings).to.deep.equal({ dnsNodeTtlMs: 10_000, dnsOnlyPassing: true });
    const clash = mergeSettings([
      entries('dns_config { node_ttl = "10s" }', 'a.hcl'),
      entries('dns_config {\n  node_ttl = "5s"\n}', 'b.hcl'),
    ]);
    expect(clash.errors.map(formatDiagnostic)).to.deep.equal([
      'b.hcl:2:3: dns_config.node_ttl: already set to "10s" at a.hcl:1:14',
    ]);
  });

  it('parses recursor addresses with port 53 by default', () => {
    expect(parseRecursorAddress('1.2.3.4')).to.deep.equal({ host: '1.2.3.4', port: 53 });
    expect(parseRecursorAddress('[::1]:5353')).to.deep.equal({ host: '::1', port: 5353 });
    expect(parseRecursorAddress('fd00::2')).to.deep.equal({ host: 'fd00::2', port: 53 });
  });
});

describe('bin/settings: DNS and virtual IP range', () => {
  const base = { servers: ['s:8500'], dataDir: '/d' };

  it('hands the agent the DNS settings that were set; --recursor replaces recursors', () => {
    expect(resolveAgent(base, {}, 'x')).to.not.have.property('dns');
    const file = {
      recursors: ['1.1.1.1'],
      domain: 'mesh',
      dnsNodeTtlMs: 10_000,
      dnsServiceTtlMs: { '*': 5000 },
      dnsOnlyPassing: true,
      dnsRecursorTimeoutMs: 1000,
    };
    expect(resolveAgent(base, file, 'x').dns).to.deep.equal({
      recursors: ['1.1.1.1'],
      domain: 'mesh',
      nodeTtlMs: 10_000,
      serviceTtlMs: { '*': 5000 },
      onlyPassing: true,
      recursorTimeoutMs: 1000,
    });
    expect(resolveAgent({ ...base, recursors: ['[::1]:5353'] }, file, 'x').dns).to.include({
      domain: 'mesh',
    });
    expect(
      resolveAgent({ ...base, recursors: ['[::1]:5353'] }, file, 'x').dns?.recursors,
    ).to.deep.equal(['[::1]:5353']);
    expect(() => resolveAgent({ ...base, recursors: ['dns.google'] }, {}, 'x')).to.throw(
      UsageError,
      '--recursor: invalid recursor "dns.google"',
    );
  });

  it('gives the server --virtual-ip-range over virtual_ip_range, and checks the flag', () => {
    expect(resolveServer({ dataDir: '/d' }, {})).to.not.have.property('virtualIpRange');
    expect(resolveServer({ dataDir: '/d' }, { virtualIpRange: '10.0.0.0/8' })).to.include({
      virtualIpRange: '10.0.0.0/8',
    });
    expect(
      resolveServer(
        { dataDir: '/d', virtualIpRange: '198.18.0.0/15' },
        { virtualIpRange: '10.0.0.0/8' },
      ),
    ).to.include({ virtualIpRange: '198.18.0.0/15' });
    expect(() => resolveServer({ dataDir: '/d', virtualIpRange: '10.0.0.0/33' }, {})).to.throw(
      UsageError,
      '--virtual-ip-range: virtual IP range "10.0.0.0/33": use an IPv4 CIDR from /4 to /30',
    );
  });

  it('names the settings the other daemon ignores', () => {
    expect(unusedSettings('agent', { virtualIpRange: '10.0.0.0/8' })).to.deep.equal([
      'virtual_ip_range',
    ]);
    expect(
      unusedSettings('server', { recursors: ['1.1.1.1'], domain: 'mesh', dnsOnlyPassing: true }),
    ).to.deep.equal(['recursors', 'domain', 'dns_config.only_passing']);
  });
});
