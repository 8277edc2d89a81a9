/** trellis services register FILE...: register the services and checks files define. */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { checkId, loadDefinitions, serviceId } from '../../definitions.js';
import { EXIT_USAGE } from '../../exit.js';
import { formatJson } from '../../output.js';

interface Args {
  files: string[];
}

export function servicesRegisterCommand(
  ctx: CliContext,
): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'register <files..>',
    describe: 'Register the services and checks defined in HCL or JSON files with the agent',
    builder: (y) =>
      y
        .positional('files', {
          type: 'string',
          array: true,
          demandOption: true,
          describe: 'Service definition files (.hcl or .json)',
        })
        .example('$0 services register web.hcl', 'Register the services in web.hcl')
        .example(
          '$0 services register /etc/trellis.d/*.hcl',
          'Several files; nothing is registered if any is broken',
        ),
    handler: action<Args>(ctx, async (env, args) => {
      const defs = await loadDefinitions(args.files, env.deps);
      if (defs.problems.length > 0) {
        for (const line of defs.problems) env.io.stderr(`${line}\n`);
        env.io.stderr(
          `Error: Nothing was registered: ${defs.problems.length} problem(s) in the service definitions\n`,
        );
        return EXIT_USAGE;
      }
      const done = { Services: [] as string[], Checks: [] as string[] };
      for (const service of defs.services) {
        await env.client.agent.registerService(service, { signal: env.signal });
        done.Services.push(serviceId(service));
        if (env.format !== 'json') env.io.stdout(`Registered service: ${serviceId(service)}\n`);
      }
      for (const check of defs.checks) {
        await env.client.agent.registerCheck(check, { signal: env.signal });
        done.Checks.push(checkId(check));
        if (env.format !== 'json') env.io.stdout(`Registered check: ${checkId(check)}\n`);
      }
      if (env.format === 'json') env.io.stdout(formatJson(done));
    }),
  };
}
