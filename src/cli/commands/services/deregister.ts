/** trellis services deregister ID... | -f FILE: remove services (and a file's checks) from the agent. */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { checkId, loadDefinitions, serviceId } from '../../definitions.js';
import { EXIT_USAGE, UsageError } from '../../exit.js';
import { formatJson } from '../../output.js';

interface Args {
  ids?: string[];
  file?: string[];
}

export function servicesDeregisterCommand(
  ctx: CliContext,
): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'deregister [ids..]',
    describe: 'Deregister services by ID, or those a definition file defines',
    builder: (y) =>
      y
        .positional('ids', { type: 'string', array: true, describe: 'Service IDs' })
        .option('file', {
          alias: 'f',
          type: 'string',
          array: true,
          requiresArg: true,
          describe: 'Deregister the services and checks this file defines (repeatable)',
        })
        .example('$0 services deregister web-1', 'Deregister the service with ID web-1')
        .example('$0 services deregister -f web.hcl', 'Deregister what web.hcl registered'),
    handler: action<Args>(ctx, async (env, args) => {
      const services = [...(args.ids ?? [])];
      const checks: string[] = [];
      const files = args.file ?? [];
      if (files.length > 0) {
        const defs = await loadDefinitions(files, env.deps);
        if (defs.problems.length > 0) {
          for (const line of defs.problems) env.io.stderr(`${line}\n`);
          env.io.stderr(`Error: Nothing was deregistered: the definition files have problems\n`);
          return EXIT_USAGE;
        }
        services.push(...defs.services.map(serviceId));
        checks.push(...defs.checks.map(checkId));
      }
      if (services.length === 0 && checks.length === 0) {
        throw new UsageError('Give the service IDs to deregister, or --file');
      }
      for (const id of services) {
        await env.client.agent.deregisterService(id, { signal: env.signal });
        if (env.format !== 'json') env.io.stdout(`Deregistered service: ${id}\n`);
      }
      for (const id of checks) {
        await env.client.agent.deregisterCheck(id, { signal: env.signal });
        if (env.format !== 'json') env.io.stdout(`Deregistered check: ${id}\n`);
      }
      if (env.format === 'json') env.io.stdout(formatJson({ Services: services, Checks: checks }));
    }),
  };
}
