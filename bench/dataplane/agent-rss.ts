/**
 * The agent's memory with 0, 1, 10, 50... local services, each with a sidecar proxy (which the
 * agent runs in its own process): a real `trellis server` (allow-all ACLs, as every benchmark
 * starts it) and, per count, a fresh `trellis agent` whose config dir holds one service file per
 * service. Once every sidecar's public listener accepts connections (its plan is complete:
 * leaf, roots, intentions) and the agent has settled, VmRSS is read from /proc; then a full GC
 * is forced through bench/lib/gc-preload (SIGUSR2) and VmRSS and the heap are read again.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Log } from '../lib/benchmark.js';
import { GC_DONE_MARK } from '../lib/gc-preload.js';
import { GC_PRELOAD_URL, TRELLIS_BIN } from '../lib/paths.js';
import { startServer } from '../lib/server.js';
import { now, sleep } from '../lib/time.js';
import { freePort } from '../../test/helpers/net.js';
import { agentArgs } from '../../test/helpers/trellis-process.js';
import { waitPorts, type ProcessGroup } from './children.js';
import type { AgentRssRow } from './types.js';

const READY_LINE = 'trellis agent listening on';
const AGENT_START_MS = 30_000;

function serviceFile(i: number, sidecarPort: number): string {
  return (
    `service {\n  name = "svc${i}"\n  port = ${9000 + i}\n  connect { sidecar_service {\n` +
    `    address = "127.0.0.1"\n    port = ${sidecarPort}\n  } }\n}\n`
  );
}

/**
 * `bin`: the trellis entry point to start (default this build's; an earlier build's for a
 * baseline measured in the same run).
 */
export async function measureAgentRss(
  counts: readonly number[],
  settleMs: number,
  group: ProcessGroup,
  log: Log,
  bin = TRELLIS_BIN,
): Promise<AgentRssRow[]> {
  const server = await startServer({ name: 'dataplane' });
  const serverAddr = server.origin.replace(/^http:\/\//, '');
  const rows: AgentRssRow[] = [];
  try {
    for (const n of counts) {
      log(`dataplane: agent with ${n} local service(s)`);
      const configDir = group.tempDir(`agent-conf-${n}`);
      const dataDir = group.tempDir(`agent-data-${n}`);
      const ports: number[] = [];
      for (let i = 1; i <= n; i++) {
        const p = await freePort();
        ports.push(p);
        writeFileSync(join(configDir, `svc${i}.hcl`), serviceFile(i, p));
      }
      const t0 = now();
      const agent = group.node(
        `agent-${n}`,
        bin,
        [...agentArgs(serverAddr, `rss-${n}`, dataDir, configDir), '--log-level', 'warn'],
        ['--expose-gc', '--import', GC_PRELOAD_URL],
      );
      try {
        await agent.waitLine(READY_LINE, AGENT_START_MS);
        await waitPorts(ports, 60_000 + n * 1000, `agent with ${n} services`, agent.running);
        const readyMs = now() - t0;
        await sleep(settleMs);
        const rss = agent.rss();
        agent.signal('SIGUSR2');
        const usage = JSON.parse(await agent.waitLine(GC_DONE_MARK, 30_000)) as {
          heapUsed: number;
          collected: boolean;
        };
        if (!usage.collected) throw new Error('the agent ran without --expose-gc');
        await sleep(200);
        rows.push({ services: n, rss, rssAfterGc: agent.rss(), heapUsed: usage.heapUsed, readyMs });
      } finally {
        await group.stop(agent);
      }
    }
  } finally {
    await server.stop();
  }
  return rows;
}
