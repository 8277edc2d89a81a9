/** trellis health state STATE: every check in a given state. */
import type { CommandModule } from 'yargs';
import type { HealthState } from '../../../client/index.js';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { checksTable, show } from '../../views.js';

interface Args {
  state: HealthState;
}

const STATES: readonly HealthState[] = ['any', 'passing', 'warning', 'critical'];

export function healthStateCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'state <state>',
    describe: 'List the checks in a state',
    builder: (y) =>
      y
        .positional('state', { choices: STATES, demandOption: true, describe: 'Check state' })
        .example('$0 health state critical', 'Every failing check in the cluster'),
    handler: action<Args>(ctx, async (env, args) => {
      const { value } = await env.client.health.state(args.state);
      show(env, value, () => checksTable(value));
    }),
  };
}
