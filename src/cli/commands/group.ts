/**
 * A noun that holds verbs ("trellis kv get"): registers its verbs, refuses to run bare, and
 * records each full command path so usage errors can point at the right --help.
 */
import type { Argv, CommandModule } from 'yargs';
import { clientFlags, type ClientFlagSet } from '../client-flags.js';
import type { CliContext, GlobalArgs } from '../context.js';

export interface GroupSpec {
  name: string;
  describe: string;
  example: [command: string, description: string];
  verbs: (add: VerbAdder) => void;
  /** The client flags its verbs take (default: all three); 'none' for ones that call no API. */
  clientFlags?: ClientFlagSet | 'none';
}

/** Registers one verb module under the group. */
export type VerbAdder = <U>(verb: CommandModule<GlobalArgs, U>) => void;

export function groupCommand(
  ctx: CliContext,
  spec: GroupSpec,
): CommandModule<GlobalArgs, GlobalArgs> {
  ctx.commandPaths.add(spec.name);
  return {
    command: spec.name,
    describe: spec.describe,
    builder: (parent: Argv<GlobalArgs>) => {
      const set = spec.clientFlags ?? 'api';
      const y = set === 'none' ? parent : clientFlags(parent, ctx.io, set);
      const names: string[] = [];
      spec.verbs((verb) => {
        const name = commandName(verb);
        names.push(name);
        ctx.commandPaths.add(`${spec.name} ${name}`);
        y.command(verb);
      });
      return y
        .example(...spec.example)
        .demandCommand(1, `Missing subcommand: expected one of ${names.join(', ')}`);
    },
    handler: () => undefined,
  };
}

/** The first word of a module's command string ("get <key>" -> "get"). */
export function commandName(mod: Pick<CommandModule, 'command'>): string {
  const command = Array.isArray(mod.command) ? mod.command[0] : mod.command;
  return String(command ?? '').split(' ')[0] ?? '';
}
