/** trellis catalog: read the cluster-wide catalog. */
import type { CliContext } from '../../context.js';
import { groupCommand } from '../group.js';
import { catalogNodesCommand } from './nodes.js';
import { catalogServiceCommand } from './service.js';
import { catalogServicesCommand } from './services.js';

export function catalogCommand(ctx: CliContext) {
  return groupCommand(ctx, {
    name: 'catalog',
    describe: 'Read the catalog: services, nodes, instances',
    example: ['$0 catalog services', 'List every service'],
    verbs: (add) => {
      add(catalogServicesCommand(ctx));
      add(catalogNodesCommand(ctx));
      add(catalogServiceCommand(ctx));
    },
  });
}
