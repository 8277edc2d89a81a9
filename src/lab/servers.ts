/**
 * What each lab server says about the servers (GET /v1/status/leader and /peers on its own
 * loopback API), and each etcd member's health: for `lab up`'s wait, `lab status` and tests.
 */
import { jsonBody, probeInNamespace } from './probe.js';
import { ETCD_LOCAL_URL } from './etcd.js';
import { SERVER_HTTP_ADDR, type LabHost } from './topology.js';

export interface ServerView {
  host: string;
  /** The leader this server names ("198.18.0.101:8300"; "" for none); absent if no answer. */
  leader?: string;
  /** Every live server this server knows of; absent if no answer. */
  peers?: string[];
}

/** Asks every server at once; a server that does not answer gets a view without fields. */
export async function serverViews(
  node: string,
  servers: readonly LabHost[],
): Promise<ServerView[]> {
  return Promise.all(
    servers.map(async (h): Promise<ServerView> => {
      const base = `http://${SERVER_HTTP_ADDR}/v1/status`;
      const answers = await probeInNamespace(node, h.namespace, [
        `${base}/leader`,
        `${base}/peers`,
      ]).catch(() => []);
      const leader = jsonBody<string>(answers[0]);
      const peers = jsonBody<string[]>(answers[1]);
      return {
        host: h.name,
        ...(typeof leader === 'string' ? { leader } : {}),
        ...(Array.isArray(peers) ? { peers } : {}),
      };
    }),
  );
}

/** The server host a "<address>:8300" leader string names, if it is one of `servers`. */
export function leaderHost(
  servers: readonly LabHost[],
  leader: string | undefined,
): LabHost | undefined {
  if (!leader) return undefined;
  const address = leader.slice(0, leader.lastIndexOf(':'));
  return servers.find((h) => h.address === address);
}

/**
 * Why the servers do not agree yet ('' once they do): every one must answer, name the same
 * leader (one of them) and list all of them as peers.
 */
export async function leaderDisagreement(
  node: string,
  servers: readonly LabHost[],
): Promise<string> {
  const views = await serverViews(node, servers);
  const silent = views.filter((v) => v.leader === undefined || v.peers === undefined);
  if (silent.length > 0) return `no answer from ${silent.map((v) => v.host).join(', ')}`;
  const leaders = new Set(views.map((v) => v.leader));
  if (leaders.size !== 1 || !leaderHost(servers, views[0]!.leader))
    return `leaders named: ${views.map((v) => `${v.host}: "${v.leader ?? ''}"`).join(', ')}`;
  const short = views.filter((v) => v.peers!.length !== servers.length);
  if (short.length > 0)
    return `peers: ${short.map((v) => `${v.host} knows ${v.peers!.length}`).join(', ')}`;
  return '';
}

/** Whether the etcd member on `host` answers its /health with "true" (it sees a leader). */
export async function etcdHealthy(node: string, host: LabHost): Promise<boolean> {
  const [answer] = await probeInNamespace(node, host.namespace, [`${ETCD_LOCAL_URL}/health`]);
  return jsonBody<{ health?: string }>(answer)?.health === 'true';
}
