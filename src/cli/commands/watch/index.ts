/** trellis watch: follow a service, key or prefix as it changes. */
import type { CliContext } from '../../context.js';
import { groupCommand } from '../group.js';
import { watchEventCommand } from './event.js';
import { watchKeyCommand } from './key.js';
import { watchPrefixCommand } from './prefix.js';
import { watchServiceCommand } from './service.js';

export function watchCommand(ctx: CliContext) {
  return groupCommand(ctx, {
    name: 'watch',
    describe: 'Print a service, key, prefix or user events, then each change until interrupted',
    example: ['$0 watch service web', 'Follow the instances of "web"'],
    verbs: (add) => {
      add(watchServiceCommand(ctx));
      add(watchKeyCommand(ctx));
      add(watchPrefixCommand(ctx));
      add(watchEventCommand(ctx));
    },
  });
}
