/** trellis services: register and deregister services with the local agent. */
import type { CliContext } from '../../context.js';
import { groupCommand } from '../group.js';
import { servicesDeregisterCommand } from './deregister.js';
import { servicesRegisterCommand } from './register.js';

export function servicesCommand(ctx: CliContext) {
  return groupCommand(ctx, {
    name: 'services',
    describe: 'Register or deregister services with the local agent',
    example: ['$0 services register web.hcl', 'Register the services defined in web.hcl'],
    verbs: (add) => {
      add(servicesRegisterCommand(ctx));
      add(servicesDeregisterCommand(ctx));
    },
  });
}
