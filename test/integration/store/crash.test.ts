/**
 * Real crashes: a child process appends and snapshots as fast as it can and is killed with
 * SIGKILL at a random moment (some runs just after a snapshot starts). After each kill the
 * store is reopened, and every index the child saw acknowledged must be there exactly once,
 * in ascending order. Runs share one directory, so each run also recovers the previous crash.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEmbeddedStore } from '../../../src/catalog/store/embedded-store.js';

const CHILD = fileURLToPath(new URL('./crash-child.js', import.meta.url));
const RUNS = 8;

interface RunResult {
  acked: number[];
  /** The kill landed after a snapshot started and before it finished. */
  duringSnapshot: boolean;
}

type KillPlan = { kind: 'timer'; ms: number } | { kind: 'snapshot'; nth: number; ms: number };

function randomInt(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1));
}

/** Runs the child until the plan says kill; resolves once it is dead and stdout drained. */
function runChild(dir: string, plan: KillPlan): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--enable-source-maps', CHILD, dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acked: number[] = [];
    let stderr = '';
    let partial = '';
    let snapshotsStarted = 0;
    let openSnapshot = false;
    let killed = false;
    let duringSnapshot = false;
    const kill = (): void => {
      if (killed) return;
      killed = true;
      duringSnapshot = openSnapshot;
      child.kill('SIGKILL');
    };
    const onLine = (line: string): void => {
      if (line.startsWith('ready')) {
        if (plan.kind === 'timer') setTimeout(kill, plan.ms);
      } else if (line.startsWith('snap-start')) {
        openSnapshot = true;
        if (plan.kind === 'snapshot' && ++snapshotsStarted === plan.nth) {
          if (plan.ms === 0) kill();
          else setTimeout(kill, plan.ms);
        }
      } else if (line.startsWith('snap-done')) {
        openSnapshot = false;
      } else {
        acked.push(Number(line));
      }
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      lines.forEach(onLine);
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (signal !== 'SIGKILL') {
        reject(new Error(`child exited on its own (code ${code}): ${stderr}`));
        return;
      }
      resolve({ acked, duringSnapshot });
    });
  });
}

/** A short tag per repair recovery made, for the summary line. */
function repairs(warnings: string[]): string {
  const tags = warnings.map((w) =>
    w.includes('torn tail')
      ? 'torn tail'
      : w.includes('unfinished snapshot')
        ? 'tmp snapshot'
        : w.includes('unfinished write-ahead')
          ? 'empty segment'
          : w,
  );
  return tags.length ? `, repaired: ${tags.join('+')}` : '';
}

describe('embedded store: SIGKILL crash test', function () {
  this.timeout(60_000);
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'trellis-store-crash-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it(`recovers every acknowledged append across ${RUNS} killed runs`, async () => {
    const allAcked: number[] = [];
    const summary: string[] = [];
    for (let run = 0; run < RUNS; run++) {
      const plan: KillPlan =
        run % 2 === 0
          ? { kind: 'timer', ms: randomInt(100, 1500) }
          : { kind: 'snapshot', nth: randomInt(1, 5), ms: randomInt(0, 2) };
      const result = await runChild(dir, plan);
      allAcked.push(...result.acked);

      const store = createEmbeddedStore({ dir });
      const recovered = await store.open();
      await store.close();
      const snap = recovered.snapshot;
      const fromSnapshot = snap ? (JSON.parse(snap.data.toString()) as number[]) : [];
      if (snap) expect(fromSnapshot[fromSnapshot.length - 1]).to.equal(snap.index);
      for (const e of recovered.entries) expect(e.index).to.be.greaterThan(snap?.index ?? 0);
      const have = [...fromSnapshot, ...recovered.entries.map((e) => e.index)];
      for (let i = 1; i < have.length; i++) {
        if (have[i]! <= have[i - 1]!) {
          throw new Error(
            `run ${run}: index ${have[i]} follows ${have[i - 1]} (duplicate or disorder)`,
          );
        }
      }
      const present = new Set(have);
      const lost = allAcked.filter((i) => !present.has(i));
      expect(lost, `run ${run}: acknowledged but not recovered`).to.deep.equal([]);
      expect(result.acked.length, `run ${run}: child made no progress`).to.be.greaterThan(0);
      summary.push(
        `${plan.kind === 'timer' ? `t+${plan.ms}ms` : `snap#${plan.nth}+${plan.ms}ms`}: ` +
          `${result.acked.length} acked${result.duringSnapshot ? ', killed mid-snapshot' : ''}` +
          repairs(recovered.warnings),
      );
    }
    console.log(`      crash runs: ${summary.join('; ')}; total acked ${allAcked.length}`);
  });
});
