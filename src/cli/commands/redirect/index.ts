/**
 * trellis redirect-traffic: the host's nftables capture, as the local agent runs it.
 *
 *   trellis redirect-traffic            apply the ruleset now (and resume after a --remove)
 *   trellis redirect-traffic --dry-run  print the ruleset the agent would apply
 *   trellis redirect-traffic --status   what is in force, and whether the live table drifted
 *   trellis redirect-traffic --remove   remove the table and pause capture (the undo)
 *
 * Unlike `consul connect redirect-traffic`, the agent owns the rules: it applies them
 * atomically, repairs drift and restores them at start. With the agent not running,
 * `--remove` deletes the table with nft itself, so the undo works when it is needed most.
 */
import { execFile } from 'node:child_process';
import type { CommandModule } from 'yargs';
import type { RedirectView } from '../../../client/index.js';
import { clientFlags } from '../../client-flags.js';
import { action, type CliContext, type CommandEnv, type GlobalArgs } from '../../context.js';
import { UsageError } from '../../exit.js';
import { formatJson } from '../../output.js';

interface RedirectArgs extends GlobalArgs {
  'dry-run'?: boolean;
  status?: boolean;
  remove?: boolean;
}

function viewText(v: RedirectView): string {
  const lines = [
    `State:    ${v.State}${v.Paused ? ' (capture paused: run `trellis redirect-traffic` to resume)' : ''}`,
  ];
  if (v.AppliedAt) lines.push(`Applied:  ${v.AppliedAt}`);
  lines.push(`Repairs:  ${v.Repairs} (drift the agent put right since it started)`);
  if (v.Error)
    lines.push(`Error:    ${v.Error}`, '          (the ruleset in force is the previous one)');
  if (v.StatusError) lines.push(`Status:   ${v.StatusError}`);
  if (v.State === 'drifted' && !v.Plan)
    lines.push(
      '          (a table the agent did not apply: left by an earlier run or a failed apply)',
    );
  if (v.Diff) lines.push('', 'Drift (- expected, + live):', v.Diff);
  return `${lines.join('\n')}\n`;
}

/** The agent is not listening: nothing received the request. */
function agentDown(err: unknown): boolean {
  for (let e: unknown = err, i = 0; e && i < 6; i++) {
    if (/ECONNREFUSED|ENOENT/.test(String((e as Error).message ?? ''))) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

function nftDeleteTable(): Promise<string> {
  // One transaction that succeeds whether or not the table exists.
  const text = 'table inet trellis {}\ndelete table inet trellis\n';
  return new Promise((resolve, reject) => {
    const child = execFile('nft', ['-f', '-'], { timeout: 10_000 }, (err, _out, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT')
        reject(new Error('nft not found: install the nftables package'));
      else if (err) reject(new Error(`nft failed: ${String(stderr).trim() || err.message}`));
      else resolve('removed');
    });
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(text);
  });
}

async function remove(env: CommandEnv): Promise<number> {
  try {
    const v = await env.client.agent.redirectRemove({ signal: env.signal });
    env.io.stdout(
      env.format === 'json'
        ? formatJson(v)
        : 'Removed the table inet trellis; capture is paused until `trellis redirect-traffic`.\n',
    );
    return 0;
  } catch (err) {
    if (!agentDown(err)) throw err;
  }
  await nftDeleteTable();
  env.io.stdout(
    'The agent is not running: removed the table inet trellis with nft.\n' +
      'The agent restores its ruleset when it starts; run `trellis redirect-traffic --remove` then to pause it.\n',
  );
  return 0;
}

export function redirectTrafficCommand(ctx: CliContext): CommandModule<GlobalArgs, RedirectArgs> {
  ctx.commandPaths.add('redirect-traffic');
  return {
    command: 'redirect-traffic',
    describe: "Apply, show or remove the agent's nftables capture of transparent services",
    builder: (y) =>
      clientFlags(y, ctx.io)
        .usage(
          '$0 redirect-traffic [--dry-run | --status | --remove]\n\n' +
            'Without a flag: apply the ruleset now; after --remove, this resumes capture.',
        )
        .option('dry-run', { type: 'boolean', describe: 'Print the ruleset the agent would apply' })
        .option('status', { type: 'boolean', describe: 'Show the ruleset in force and any drift' })
        .option('remove', { type: 'boolean', describe: 'Remove the ruleset and pause capture' })
        .example('$0 redirect-traffic', 'Apply the rules now (re-applies them after --remove)')
        .example('$0 redirect-traffic --dry-run', 'The nft text, applied nowhere')
        .example('$0 redirect-traffic --status', 'In sync, drifted, or absent')
        .example('$0 redirect-traffic --remove', 'Undo: no trellis rules left on the host'),
    handler: action<RedirectArgs>(ctx, async (env, args) => {
      const modes = (['dry-run', 'status', 'remove'] as const).filter((m) => args[m]);
      if (modes.length > 1)
        throw new UsageError(`--${modes[0]} and --${modes[1]} cannot be combined; choose one`);
      const mode = modes[0];
      if (mode === 'remove') return remove(env);
      if (mode === 'dry-run') {
        const r = await env.client.agent.redirectDryRun({ signal: env.signal });
        env.io.stdout(env.format === 'json' ? formatJson(r) : r.Ruleset);
        return 0;
      }
      const v =
        mode === 'status'
          ? await env.client.agent.redirect({ signal: env.signal })
          : await env.client.agent.redirectApply({ signal: env.signal });
      env.io.stdout(env.format === 'json' ? formatJson(v) : viewText(v));
      // --status exits 1 when the live table is not what the agent applied (or cannot be
      // read), for scripts.
      return mode === 'status' && (v.State === 'drifted' || v.State === 'unknown' || v.Error)
        ? 1
        : 0;
    }),
  };
}
