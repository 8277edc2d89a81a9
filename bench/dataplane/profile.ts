/**
 * Where a Trellis HTTP/1.1 pair spends its CPU: the pair's host runs once more with V8's CPU
 * profiler (`--cpu-prof`) under wrk at saturation, and the frames with the most self time are
 * reported (idle time left out; native frames such as `writev` include the system calls and TLS
 * work done inside them).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProcessGroup } from './children.js';
import { startTrellisHost, type PairContext } from './pairs.js';
import { runWrk } from './tools.js';

export interface ProfileRow {
  frame: string;
  selfMs: number;
  /** Share of the process's busy (non-idle) time. */
  pct: number;
}

export interface ProfileResult {
  requests: number;
  seconds: number;
  busyMs: number;
  rows: ProfileRow[];
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

/** The `top` frames of `profile` by self time. */
export function topFrames(
  profile: CpuProfile,
  top: number,
): { busyMs: number; rows: ProfileRow[] } {
  const spent = new Map<number, number>();
  profile.samples.forEach((id, i) =>
    spent.set(id, (spent.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)),
  );
  const byFrame = new Map<string, number>();
  let busy = 0;
  for (const n of profile.nodes) {
    const us = spent.get(n.id) ?? 0;
    const { functionName, url, lineNumber } = n.callFrame;
    if (functionName === '(idle)' || us === 0) continue;
    busy += us;
    const file = url
      ? url.replace(/^.*\/(node_modules\/|dist\/)/, '$1').replace(/^file:\/\//, '')
      : '';
    const frame = file
      ? `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}`
      : functionName;
    byFrame.set(frame, (byFrame.get(frame) ?? 0) + us);
  }
  const rows = [...byFrame]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([frame, us]) => ({ frame, selfMs: us / 1000, pct: (100 * us) / busy }));
  return { busyMs: busy / 1000, rows };
}

/** Profiles the Trellis HTTP/1.1 pair for `seconds` of saturated load. */
export async function profileHttpPair(
  ctx: PairContext,
  group: ProcessGroup,
  seconds: number,
  connections: number,
): Promise<ProfileResult> {
  const dir = group.tempDir('profile');
  const { child, port } = await startTrellisHost(ctx, 'trellis-http-profile', 'http', undefined, [
    '--cpu-prof',
    '--cpu-prof-dir',
    dir,
  ]);
  const url = `http://127.0.0.1:${port}/`;
  const pids = { 'proxy:trellis': child.pid };
  await runWrk(group, { url, connections, threads: 1, seconds: 1, latency: false, pids });
  const run = await runWrk(group, { url, connections, threads: 1, seconds, latency: false, pids });
  await group.stop(child); // SIGTERM: the host exits and V8 writes the profile
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('the profiled host wrote no .cpuprofile');
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  const { busyMs, rows } = topFrames(profile, 20);
  return { requests: run.requests, seconds, busyMs, rows };
}
