/**
 * Every `trellis` command refuses a flag it does not use: exit 2, one `Error:` line naming the
 * flag and a pointer to the command's --help, and nothing done. The command list is read from
 * the CLI's own --help (with the binary's daemons and lab), so a command added later is covered
 * without editing this file. The client flags (--http-addr, --token, --format) exist only
 * where they do something. In-process, as the parser decides before any command runs;
 * test/e2e/cli-flags.test.ts checks the same through the real binary for a few commands.
 */
import { expect } from 'chai';
import { runCli } from '../../../src/cli/index.js';
import { register } from '../../../src/bin/trellis.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function trellis(argv: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  // A dead address: a command that wrongly ran would fail to connect, not change anything.
  const code = await runCli(
    argv,
    {
      stdout: (s) => (stdout += s),
      stderr: (s) => (stderr += s),
      env: { TRELLIS_HTTP_ADDR: '127.0.0.1:1' },
    },
    { register },
  );
  return { code, stdout, stderr };
}

/** Runs `fn` on every item, at most `limit` at a time (the machine has few cores). */
async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return out;
}

/** `trellis kv get <key>` -> ['kv', 'get', 'x']: required positionals filled, optional ones left out. */
function invocation(usage: string): string[] {
  return usage
    .split(/\s+/)
    .slice(1)
    .filter((w) => !w.startsWith('['))
    .map((w) => (w.startsWith('<') ? 'x' : w));
}

/** The subcommands a --help text lists, as their usage strings ("trellis kv get <key>"). */
function listedCommands(help: string): string[] {
  const section = /^Commands:\n([\s\S]*?)\n\n/m.exec(help)?.[1] ?? '';
  return section
    .split('\n')
    .map((l) => /^ {2}(trellis \S.*?)(?: {2,}|$)/.exec(l)?.[1])
    .filter((c): c is string => c !== undefined);
}

/** `--name x` for each option the help marks [required], so the flag under test is the only problem. */
function requiredOptions(help: string): string[] {
  const names = [...help.matchAll(/^\s+--([a-z-]+)\b(?:.*\n\s{20,})?.*\[required\]$/gm)].map(
    (m) => m[1]!,
  );
  return names.flatMap((n) => [`--${n}`, 'x']);
}

/** Every runnable command: the leaves of the --help tree, plus the hidden demo-app. */
async function leafCommands(): Promise<string[][]> {
  // demo-app is hidden; `agent` both runs the agent and holds `agent drain`.
  const leaves: string[][] = [['demo-app', '--name', 'x', '--listen', '127.0.0.1:0'], ['agent']];
  const walk = async (path: string[]): Promise<void> => {
    const help = await trellis([...path, '--help']);
    expect(help.code, `${path.join(' ')} --help: ${help.stderr}`).to.equal(0);
    const subs = listedCommands(help.stdout);
    if (subs.length === 0) {
      leaves.push([...path, ...requiredOptions(help.stdout)]);
      return;
    }
    await pool(subs, 4, async (usage) => {
      const words = invocation(usage);
      const isChild = words.length > path.length && path.every((w, i) => words[i] === w);
      expect(isChild, `${usage} under ${path.join(' ')}`).to.equal(true);
      await walk(words);
    });
  };
  await walk([]);
  return leaves;
}

/** Commands that take each client flag; every other command must refuse it. */
const TAKES: Record<string, (cmd: string) => boolean> = {
  // The agent's --http-addr is its API address and --token its own token.
  'http-addr': (cmd) => !/^(server|dev|lab|demo-app|dns)\b/.test(cmd),
  token: (cmd) => !/^(server|dev|lab|demo-app|dns)\b/.test(cmd),
  format: (cmd) =>
    !/^(server|dev|demo-app)\b/.test(cmd) &&
    !/^agent(?! drain)\b/.test(cmd) &&
    !/^lab (up|down|exec)/.test(cmd),
};

describe('trellis: every command refuses flags it does not use', function () {
  this.timeout(60_000);
  let commands: string[][];

  before(async () => {
    commands = await leafCommands();
  });

  it('finds every command family in --help', () => {
    const names = commands.map((c) => c.slice(0, 2).join(' '));
    for (const c of ['kv get', 'acl token', 'lab up', 'lab exec', 'server', 'agent', 'dev'])
      expect(
        names.some((n) => n.startsWith(c)),
        c,
      ).to.equal(true);
    expect(commands.length).to.be.greaterThan(40);
  });

  it('an unknown flag: exit 2, "Unknown argument", the command\'s own --help, nothing run', async () => {
    await pool(commands, 4, async (cmd) => {
      const words = cmd.slice(0, cmd.findIndex((w) => w.startsWith('-')) >>> 0);
      const name = words.filter((w) => w !== 'x');
      const r = await trellis([...cmd, '--bogus-flag']);
      const label = `trellis ${cmd.join(' ')} --bogus-flag`;
      expect(r.code, `${label}\n${r.stderr}`).to.equal(2);
      expect(r.stdout, label).to.equal('');
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines[0], label).to.equal('Error: Unknown argument: bogus-flag');
      expect(lines.slice(1), label).to.deep.equal([
        `Run "trellis ${name.join(' ')} --help" for usage.`,
      ]);
    });
  });

  for (const [flag, takes] of Object.entries(TAKES)) {
    it(`--${flag} is refused where it would do nothing`, async () => {
      const refusing = commands.filter((c) => !takes(c.join(' ')));
      expect(refusing.length).to.be.greaterThan(3);
      await pool(refusing, 4, async (cmd) => {
        const value = flag === 'format' ? 'json' : '127.0.0.1:9500';
        const r = await trellis([...cmd, `--${flag}`, value]);
        const label = `trellis ${cmd.join(' ')} --${flag}`;
        expect(r.code, `${label}\n${r.stderr}`).to.equal(2);
        expect(r.stderr, label).to.match(new RegExp(`^Error: Unknown argument: ${flag}\\b`));
      });
    });
  }
});
