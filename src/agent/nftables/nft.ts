/**
 * Applies the `inet trellis` table with the real `nft` binary (execFile, no shell). The whole
 * file goes to `nft -f -` on stdin: one kernel transaction, so a refused file leaves the previous
 * ruleset in force. An optional network namespace runs everything as `ip netns exec <ns> nft ...`
 * (tests use this; the agent runs in the host namespace).
 */
import { execFile } from 'node:child_process';
import { MeshError } from '../../core/index.js';
import {
  removeFile,
  renderRuleset,
  TABLE_FAMILY,
  TABLE_NAME,
  wholeFile,
  type RedirectPlan,
} from './ruleset.js';

export interface NftOptions {
  /** Run inside this network namespace (`ip netns exec <netns> nft ...`). */
  netns?: string;
  /** The nft binary (default `nft`, found on PATH). */
  nftPath?: string;
  /** Per-invocation timeout in ms (default 10000). */
  timeoutMs?: number;
}

export interface ApplyResult {
  /** `nft list table inet trellis` right after the apply: persist it and pass it to status(). */
  listing: string;
}

export interface NftStatus {
  /** `unknown`: the live table could not be read (the error says why). */
  state: 'absent' | 'in-sync' | 'drifted' | 'unknown';
  diff?: string;
}

/** What an agent without CAP_NET_ADMIN gets from nft; said plainly in the error. */
export const NEEDS_CAP_NET_ADMIN =
  'the agent lacks the CAP_NET_ADMIN capability, which nftables needs (systemd: AmbientCapabilities=CAP_NET_ADMIN; or run it as root)';

const MAX_STDERR_LINES = 8;

function command(opts: NftOptions, args: string[]): [string, string[]] {
  const nft = opts.nftPath ?? 'nft';
  if (opts.netns !== undefined) return ['ip', ['netns', 'exec', opts.netns, nft, ...args]];
  return [nft, args];
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs nft; resolves with the exit code (never rejects on a non-zero exit). */
function run(opts: NftOptions, args: string[], input?: string): Promise<RunResult> {
  const [file, argv] = command(opts, args);
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      argv,
      { timeout: opts.timeoutMs ?? 10_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
          reject(
            new MeshError(
              'MESH_ERR_NFT_MISSING',
              'system',
              `nft not found: install the nftables package`,
              {
                cause: err,
              },
            ),
          );
          return;
        }
        if (err && typeof (err as { code?: unknown }).code !== 'number') {
          reject(
            new MeshError('MESH_ERR_NFT', 'system', `running ${file}: ${err.message}`, {
              cause: err,
            }),
          );
          return;
        }
        const code = err ? ((err as { code?: unknown }).code as number) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.on('error', () => undefined); // the child may exit before reading stdin
    child.stdin?.end(input ?? '');
  });
}

function firstLines(s: string): string {
  const lines = s.trim().split('\n');
  const head = lines.slice(0, MAX_STDERR_LINES).join('\n');
  return lines.length > MAX_STDERR_LINES
    ? `${head}\n... (${lines.length - MAX_STDERR_LINES} more lines)`
    : head;
}

function refused(what: string, r: RunResult): MeshError {
  // `ip netns exec` reports a missing nft binary as exit 255 + "No such file or directory".
  if (/exec of "[^"]*" failed: No such file or directory/.test(r.stderr))
    return new MeshError(
      'MESH_ERR_NFT_MISSING',
      'system',
      'nft not found: install the nftables package',
    );
  if (/Operation not permitted/.test(r.stderr))
    return new MeshError(
      'MESH_ERR_NFT_PERMISSION',
      'system',
      `nft ${what} failed: Operation not permitted: ${NEEDS_CAP_NET_ADMIN}`,
    );
  return new MeshError(
    'MESH_ERR_NFT',
    'system',
    `nft ${what} failed (exit ${r.code}): ${firstLines(r.stderr)}`,
  );
}

/** Low level: `nft -f -` with this text, one transaction. Throws with nft's stderr on refusal. */
export async function applyText(text: string, opts: NftOptions = {}): Promise<void> {
  const r = await run(opts, ['-f', '-'], text);
  if (r.code !== 0) throw refused('-f', r);
}

/** Low level: `nft -c -f -` (parse and check against the kernel, apply nothing). */
export async function checkText(text: string, opts: NftOptions = {}): Promise<void> {
  const r = await run(opts, ['-c', '-f', '-'], text);
  if (r.code !== 0) throw refused('-c -f', r);
}

/** The current `nft list table inet trellis`, or undefined when the table does not exist. */
export async function listing(opts: NftOptions = {}): Promise<string | undefined> {
  const r = await run(opts, ['list', 'table', TABLE_FAMILY, TABLE_NAME]);
  if (r.code === 0) return r.stdout;
  if (/No such file or directory/.test(r.stderr) && !/exec of "/.test(r.stderr)) return undefined;
  throw refused('list table', r);
}

/** Replaces the table with the plan's, atomically, and returns the resulting listing. */
export async function apply(plan: RedirectPlan, opts: NftOptions = {}): Promise<ApplyResult> {
  await applyText(wholeFile(plan), opts);
  const l = await listing(opts);
  if (l === undefined)
    throw new MeshError('MESH_ERR_NFT', 'system', 'nft applied the table but it is not listed');
  return { listing: l };
}

/** Removes the table (whether or not it exists), atomically. */
export async function remove(opts: NftOptions = {}): Promise<void> {
  await applyText(removeFile(), opts);
}

/** The text apply() would feed to nft; calls nothing. */
export function dryRun(plan: RedirectPlan): string {
  return wholeFile(plan);
}

/** Validates the plan's file with `nft -c` (the kernel checks it; nothing is applied). */
export async function check(plan: RedirectPlan, opts: NftOptions = {}): Promise<void> {
  await checkText(wholeFile(plan), opts);
}

/** A small line diff (only the lines that differ, `-` expected, `+` live), for operators. */
export function lineDiff(expected: string, live: string): string {
  const a = expected.split('\n');
  const b = live.split('\n');
  // LCS table; listings are small (hundreds of lines), so O(n*m) is fine.
  const dp: number[][] = Array.from({ length: a.length + 1 }, () =>
    new Array<number>(b.length + 1).fill(0),
  );
  for (let i = a.length - 1; i >= 0; i--)
    for (let j = b.length - 1; j >= 0; j--)
      dp[i][j] = a[i] === b[j] ? dp[i + 1][j + 1] + 1 : Math.max(dp[i + 1][j], dp[i][j + 1]);
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      i++;
      j++;
    } else if (dp[i + 1][j] >= dp[i][j + 1]) out.push(`- ${a[i++]}`);
    else out.push(`+ ${b[j++]}`);
  }
  while (i < a.length) out.push(`- ${a[i++]}`);
  while (j < b.length) out.push(`+ ${b[j++]}`);
  return out.join('\n');
}

/**
 * Compares the live table with what the plan produces. `expectedListing` is the listing apply()
 * returned (persisted by the caller); without it, the plan is checked with `nft -c` only and the
 * comparison falls back to the plan's rendered text, normalised the way nft prints it, which can
 * report drift for equivalent rules: pass the recorded listing when you have it.
 */
export async function status(
  plan: RedirectPlan,
  opts: NftOptions = {},
  expectedListing?: string,
): Promise<NftStatus> {
  const live = await listing(opts);
  if (live === undefined) return { state: 'absent' };
  const expected = expectedListing ?? renderRuleset(plan);
  const norm = (s: string): string =>
    s
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '')
      .join('\n');
  if (norm(live) === norm(expected)) return { state: 'in-sync' };
  return { state: 'drifted', diff: lineDiff(norm(expected), norm(live)) };
}

/**
 * The stateful applier: remembers the listing of its last successful apply in memory, so
 * status() compares the live table against exactly what nft printed then.
 */
export class NftApplier {
  private lastListing: string | undefined;
  private lastRendered: string | undefined;

  constructor(
    private readonly opts: NftOptions = {},
    /** A listing persisted from an earlier run (ApplyResult.listing). */
    recordedListing?: string,
  ) {
    this.lastListing = recordedListing;
  }

  get recordedListing(): string | undefined {
    return this.lastListing;
  }

  async apply(plan: RedirectPlan): Promise<ApplyResult> {
    const r = await apply(plan, this.opts);
    this.lastListing = r.listing;
    this.lastRendered = renderRuleset(plan);
    return r;
  }

  async remove(): Promise<void> {
    await remove(this.opts);
    this.lastListing = undefined;
    this.lastRendered = undefined;
  }

  check(plan: RedirectPlan): Promise<void> {
    return check(plan, this.opts);
  }

  /** The live table's listing, undefined when there is none (throws when it cannot be read). */
  live(): Promise<string | undefined> {
    return listing(this.opts);
  }

  dryRun(plan: RedirectPlan): string {
    return dryRun(plan);
  }

  /** A plan other than the one last applied (by this applier) counts as drift too. */
  async status(plan: RedirectPlan): Promise<NftStatus> {
    const st = await status(plan, this.opts, this.lastListing);
    const rendered = renderRuleset(plan);
    if (st.state === 'in-sync' && this.lastRendered !== undefined && rendered !== this.lastRendered)
      return { state: 'drifted', diff: lineDiff(this.lastRendered, rendered) };
    return st;
  }
}
