/**
 * Crash-test workload, run as a child process: `node crash-child.js <dir>`.
 * Recovers the store, then appends forever with many appends in flight, printing one line per
 * acknowledged index ("<index>") and around each snapshot ("snap-start <i>", "snap-done <i>").
 * Its state machine's state is the list of applied indexes, which is what snapshots hold, so
 * the parent can check every acknowledged index against what recovery returns.
 * stdout is a pipe, and pipe writes are synchronous on Linux: a printed line has left the
 * process before the next instruction runs, so SIGKILL cannot lose it.
 */
import { createEmbeddedStore } from '../../../src/catalog/store/embedded-store.js';

const IN_FLIGHT = 64;
const SNAPSHOT_EVERY = 300;
/** Pads snapshots so that writing one takes long enough to be hit by a kill. */
const SNAPSHOT_PAD = ' '.repeat(64 * 1024);

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function die(err: unknown): never {
  process.stderr.write(`crash-child: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
}

async function main(dir: string): Promise<void> {
  const store = createEmbeddedStore({ dir, segmentBytes: 32 * 1024 });
  const recovered = await store.open();
  const applied: number[] = recovered.snapshot
    ? (JSON.parse(recovered.snapshot.data.toString()) as number[])
    : [];
  for (const e of recovered.entries) applied.push(e.index);
  let next = Math.max(recovered.snapshot?.index ?? 0, applied[applied.length - 1] ?? 0) + 1;
  let inFlight = 0;
  let sinceSnapshot = 0;
  let snapshotting = false;

  const snapshot = (): void => {
    snapshotting = true;
    sinceSnapshot = 0;
    const index = applied[applied.length - 1]!;
    const data = Buffer.from(JSON.stringify(applied) + SNAPSHOT_PAD);
    say(`snap-start ${index}`);
    store.snapshot({ index, data }).then(() => {
      say(`snap-done ${index}`);
      snapshotting = false;
    }, die);
  };

  const pump = (): void => {
    while (inFlight < IN_FLIGHT) {
      const index = next++;
      inFlight++;
      const command = { op: 'set', key: `svc/${index}`, pad: 'x'.repeat(index % 97) };
      store.append({ index, command }).then(() => {
        inFlight--;
        applied.push(index);
        say(String(index));
        if (++sinceSnapshot >= SNAPSHOT_EVERY && !snapshotting) snapshot();
        pump();
      }, die);
    }
  };

  say(`ready ${next}`);
  pump();
}

main(process.argv[2] ?? die('usage: crash-child.js <dir>')).catch(die);
