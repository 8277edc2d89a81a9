/** trellis watch event [--name N]: user events as they arrive at this agent's node. */
import type { CommandModule } from 'yargs';
import type { UserEvent } from '../../../api/index.js';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { runWatch } from './loop.js';

interface Args {
  name?: string;
}

/** One line per event; the payload as text (control characters escaped). */
export function eventLine(e: UserEvent): string {
  const payload = e.Payload === null ? '' : Buffer.from(e.Payload, 'base64').toString('utf8');
  return `${e.Name} ${e.ID} ltime=${e.LTime} payload=${JSON.stringify(payload)}\n`;
}

export function watchEventCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'event',
    describe: 'Print the recent user events for this node, then each new one as it arrives',
    builder: (y) =>
      y
        .option('name', { type: 'string', describe: 'Only events with this name' })
        .example('$0 watch event --name deploy', 'Follow "deploy" events')
        .example('$0 watch event --format json', 'One event (Consul shape) per line'),
    handler: action<Args>(ctx, (env, args) => {
      // The servers keep the last 256 events; each is printed once, by ID.
      let seen = new Set<string>();
      return runWatch(
        env,
        async (index, signal) => {
          const r = await env.client.event.list({
            index,
            signal,
            ...(args.name ? { name: args.name } : {}),
          });
          const fresh = r.value.filter((e) => !seen.has(e.ID));
          seen = new Set(r.value.map((e) => e.ID));
          return { value: fresh, index: r.index };
        },
        (events) => events.map(eventLine).join(''),
        { items: (events) => events },
      );
    }),
  };
}
