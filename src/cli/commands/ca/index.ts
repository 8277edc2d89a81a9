/** trellis ca: the mesh certificate authority's roots, configuration and rotation. */
import type { CommandModule } from 'yargs';
import type { CARoots } from '../../../api/index.js';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { UsageError } from '../../exit.js';
import { formatJson } from '../../output.js';
import { groupCommand } from '../group.js';

function rootsText(r: CARoots): string {
  const lines = [`Trust domain:  ${r.TrustDomain}`, `Active root:   ${r.ActiveRootID}`, ''];
  for (const root of r.Roots) {
    lines.push(
      `${root.Active ? '* ' : '  '}${root.ID}`,
      `    valid ${root.NotBefore} .. ${root.NotAfter}${root.Active ? '' : '  (rotated out; kept until its leaves expire)'}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function rootsCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs> {
  return {
    command: 'roots',
    describe: 'List the CA roots (the active one is starred)',
    builder: (y) => y.example('$0 ca roots', 'Show the trust domain and roots'),
    handler: action(ctx, async (env) => {
      const { value } = await env.client.connect.caRoots({ signal: env.signal });
      env.io.stdout(env.format === 'json' ? formatJson(value) : rootsText(value));
    }),
  };
}

function rotateCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs> {
  return {
    command: 'rotate',
    describe:
      'Make a new root now; the old one cross-signs it and stays trusted until its leaves expire',
    builder: (y) => y.example('$0 ca rotate', 'Rotate the root'),
    handler: action(ctx, async (env) => {
      const r = await env.client.request<{ ActiveRootID: string }>({
        method: 'PUT',
        path: '/v1/internal/trellis/ca/rotate',
        signal: env.signal,
      });
      const id = (r.body as { ActiveRootID: string }).ActiveRootID;
      env.io.stdout(
        env.format === 'json' ? formatJson({ ActiveRootID: id }) : `Rotated. Active root: ${id}\n`,
      );
    }),
  };
}

interface SetArgs {
  'leaf-ttl'?: string;
  'rotation-period'?: string;
  'csr-max-per-second'?: number;
}

function getConfigCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs> {
  return {
    command: 'get-config',
    describe: 'Print the CA configuration',
    builder: (y) => y.example('$0 ca get-config', 'Leaf lifetime, rotation period, limits'),
    handler: action(ctx, async (env) => {
      const { value } = await env.client.connect.caGetConfig({ signal: env.signal });
      env.io.stdout(formatJson(value));
    }),
  };
}

function setConfigCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & SetArgs> {
  return {
    command: 'set-config',
    describe: 'Change the leaf lifetime, automatic rotation period or signing rate limit',
    builder: (y) =>
      y
        .option('leaf-ttl', { type: 'string', describe: 'Leaf certificate lifetime, e.g. 24h' })
        .option('rotation-period', {
          type: 'string',
          describe: 'Rotate the root automatically at this age (0s = only when asked)',
        })
        .option('csr-max-per-second', {
          type: 'number',
          describe: 'Leaf signings allowed per agent per second (0 = no limit)',
        })
        .example('$0 ca set-config --leaf-ttl 24h', 'Shorter-lived leaves'),
    handler: action<SetArgs>(ctx, async (env, args) => {
      const config: Record<string, unknown> = {};
      if (args['leaf-ttl'] !== undefined) config.LeafCertTTL = args['leaf-ttl'];
      if (args['rotation-period'] !== undefined) config.RotationPeriod = args['rotation-period'];
      if (args['csr-max-per-second'] !== undefined)
        config.CSRMaxPerSecond = args['csr-max-per-second'];
      if (Object.keys(config).length === 0)
        throw new UsageError(
          'nothing to change: give --leaf-ttl, --rotation-period or --csr-max-per-second',
        );
      await env.client.connect.caSetConfig(
        { Provider: 'consul', Config: config },
        { signal: env.signal },
      );
      env.io.stdout('Configuration updated.\n');
    }),
  };
}

export function caCommand(ctx: CliContext) {
  return groupCommand(ctx, {
    name: 'ca',
    describe: 'The mesh certificate authority: roots, configuration, rotation',
    example: ['$0 ca roots', 'Show the roots'],
    verbs: (add) => {
      add(rootsCommand(ctx));
      add(rotateCommand(ctx));
      add(getConfigCommand(ctx));
      add(setConfigCommand(ctx));
    },
  });
}
