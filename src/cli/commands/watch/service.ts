/** trellis watch service NAME: the instances of a service, reprinted on every change. */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { serviceEntriesTable } from '../../views.js';
import { runWatch } from './loop.js';

interface Args {
  name: string;
  passing?: boolean;
}

export function watchServiceCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'service <name>',
    describe: 'Print the instances of a service, then again on every change',
    builder: (y) =>
      y
        .positional('name', { type: 'string', demandOption: true, describe: 'Service name' })
        .option('passing', { type: 'boolean', describe: 'Only instances whose checks all pass' })
        .example('$0 watch service web --passing', 'Follow the healthy instances of "web"')
        .example('$0 watch service web --format json', 'One JSON document per change'),
    handler: action<Args>(ctx, (env, args) =>
      runWatch(
        env,
        (index, signal) =>
          env.client.health.service(args.name, { passing: args.passing, index, signal }),
        serviceEntriesTable,
      ),
    ),
  };
}
