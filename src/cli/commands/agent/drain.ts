/**
 * trellis agent drain: drains this host through its agent's API (PUT /v1/agent/drain) and
 * waits until the agent has finished: its services critical in the catalog, a grace while
 * callers move away, the sidecars closed to new connections with open ones finished; then
 * the agent stops. What systemd's stop (SIGTERM) does too.
 */
import type { Argv, CommandModule } from 'yargs';
import { clientFlags } from '../../client-flags.js';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { show } from '../../views.js';

interface DrainArgs extends GlobalArgs {
  timeout?: string;
  grace?: string;
}

export function agentDrainCommand(ctx: CliContext): CommandModule<GlobalArgs, DrainArgs> {
  ctx.commandPaths.add('agent drain');
  return {
    command: 'drain',
    describe: "Drain this host's sidecars, then stop the agent",
    builder: (y: Argv<GlobalArgs>) =>
      clientFlags(y, ctx.io)
        .option('timeout', {
          type: 'string',
          defaultDescription: '30s',
          describe: 'Everything ends within this long; connections still open then are cut',
        })
        .option('grace', {
          type: 'string',
          defaultDescription: '2s',
          describe: "How long the sidecars keep serving while callers' proxies move away",
        })
        .example('$0 agent drain', 'Drain and stop the local agent')
        .example('$0 agent drain --timeout 2m --grace 5s', 'Give long requests more time'),
    handler: action<DrainArgs>(ctx, async (env, args) => {
      const r = await env.client.agent.drain({
        ...(args.timeout !== undefined ? { timeout: args.timeout } : {}),
        ...(args.grace !== undefined ? { grace: args.grace } : {}),
      });
      show(
        env,
        r,
        () =>
          [
            r.Marked
              ? 'The catalog marked this host critical; callers moved away.'
              : 'The catalog could not be told (no server reachable); drained anyway.',
            r.Cut === 0
              ? 'Every open connection finished. The agent is stopping.'
              : `${r.Cut} connection(s) still open at the time limit were cut. The agent is stopping.`,
          ].join('\n') + '\n',
      );
    }),
  };
}
