/**
 * trellis dns resolved-config: print, or write with --write, the systemd-resolved drop-in that
 * sends the mesh domain to the agent's DNS. Writing is atomic (a temp file in the same dir,
 * fsynced, then renamed), so resolved never reads half a file.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { makeDirs } from '../../../core/make-dirs.js';
import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { formatJson } from '../../output.js';
import {
  DEFAULT_AGENT_DNS_ADDR,
  DEFAULT_RESOLVED_DIR,
  DROP_IN_NAME,
  resolvedDropIn,
} from './resolved-drop-in.js';

interface Args {
  'dns-addr': string;
  domain: string;
  write?: boolean;
  dir: string;
}

async function writeAtomically(dir: string, name: string, text: string): Promise<string> {
  makeDirs(dir, 0o755);
  const path = join(dir, name);
  // resolved reads only *.conf, so the temp file is ignored if we die before the rename.
  const tmp = join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const f = await open(tmp, 'wx', 0o644);
    try {
      await f.writeFile(text);
      await f.sync();
    } finally {
      await f.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } catch {
    // Some file systems cannot fsync a directory; the rename itself is still atomic.
  } finally {
    await d.close();
  }
  return path;
}

export function resolvedConfigCommand(
  ctx: CliContext,
): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'resolved-config',
    describe:
      "Print (or --write) the systemd-resolved drop-in that routes the mesh domain to the agent's DNS",
    builder: (y) =>
      y
        .option('dns-addr', {
          type: 'string',
          default: DEFAULT_AGENT_DNS_ADDR,
          describe: "The agent's DNS address (its dns_addr), IP[:port]",
          requiresArg: true,
        })
        .option('domain', {
          type: 'string',
          default: 'consul',
          describe: "The mesh DNS domain (the agent's domain setting)",
          requiresArg: true,
        })
        .option('write', {
          type: 'boolean',
          describe: `Write it to --dir/${DROP_IN_NAME} instead of printing it`,
        })
        .option('dir', {
          type: 'string',
          default: DEFAULT_RESOLVED_DIR,
          describe: 'Drop-in directory for --write',
          requiresArg: true,
        })
        .example('$0 dns resolved-config', 'Show the drop-in for 127.0.0.1:8600 and .consul')
        .example(
          '$0 dns resolved-config --write && systemctl restart systemd-resolved',
          'As root: install it',
        ),
    handler: action<Args>(ctx, async (env, args) => {
      const text = resolvedDropIn(args['dns-addr'], args.domain);
      if (!args.write) {
        env.io.stdout(env.format === 'json' ? formatJson({ Content: text }) : text);
        return;
      }
      const path = await writeAtomically(args.dir, DROP_IN_NAME, text);
      env.io.stdout(
        env.format === 'json'
          ? formatJson({ Path: path, Content: text })
          : `Wrote ${path}\nApply it with: systemctl restart systemd-resolved\n`,
      );
    }),
  };
}
