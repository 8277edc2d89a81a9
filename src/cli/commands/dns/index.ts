/** trellis dns: wiring the host's resolver to the agent's DNS. */
import type { CliContext } from '../../context.js';
import { groupCommand } from '../group.js';
import { resolvedConfigCommand } from './resolved-config.js';

export function dnsCommand(ctx: CliContext) {
  return groupCommand(ctx, {
    name: 'dns',
    describe: "Point the host's resolver at the agent's DNS",
    example: ['$0 dns resolved-config', 'Print the systemd-resolved drop-in'],
    clientFlags: 'format',
    verbs: (add) => {
      add(resolvedConfigCommand(ctx));
    },
  });
}
