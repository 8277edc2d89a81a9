/**
 * The systemd-resolved drop-in that routes only the mesh domain to the agent's DNS (pure, so
 * its text is tested without touching /etc). `Domains=~<domain>` makes the domain a routing
 * domain, not a search domain; `DNS=` takes a port since systemd 246; DNSSEC is off for these
 * servers because the agent does not sign its answers.
 */
import { dnsDomain, parseRecursorAddress } from '../../../config/dns-values.js';
import { UsageError } from '../../exit.js';

export const DEFAULT_AGENT_DNS_ADDR = '127.0.0.1:8600';
export const DEFAULT_RESOLVED_DIR = '/etc/systemd/resolved.conf.d';
export const DROP_IN_NAME = 'trellis.conf';

/** `ip[:port]` (port 8600 when absent) -> what resolved's DNS= takes. */
export function resolvedServer(addr: string): string {
  const withPort = /^\[.*\]:\d+$/.test(addr) || /^[\d.]+:\d+$/.test(addr);
  let parsed;
  try {
    parsed = parseRecursorAddress(addr);
  } catch {
    throw new UsageError(
      `--dns-addr ${JSON.stringify(addr)}: use the agent's DNS address as an IP and port, such as ${DEFAULT_AGENT_DNS_ADDR} (resolved takes no host names)`,
    );
  }
  const port = withPort ? parsed.port : 8600;
  const host = parsed.host.includes(':') ? `[${parsed.host}]` : parsed.host;
  // Port 53 is written without it, which systemd older than 246 understands too.
  return port === 53 ? host : `${host}:${port}`;
}

export function resolvedDomain(domain: string): string {
  const problem = dnsDomain(domain);
  if (problem) throw new UsageError(`--domain: ${problem}`);
  return domain.replace(/\.$/, '').toLowerCase();
}

export function resolvedDropIn(dnsAddr: string, domain: string): string {
  const server = resolvedServer(dnsAddr);
  const d = resolvedDomain(domain);
  return [
    `# Written by \`trellis dns resolved-config\`. Only *.${d} names go to the Trellis agent's`,
    "# DNS; every other name keeps using this host's usual servers, also while the agent is down.",
    '# Apply: systemctl restart systemd-resolved',
    `# Check: resolvectl query consul.service.${d}`,
    '[Resolve]',
    `DNS=${server}`,
    'DNSSEC=false',
    `Domains=~${d}`,
    '',
  ].join('\n');
}
