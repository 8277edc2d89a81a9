/**
 * trellis acl token create: a token with policies and identities, or (--join) a one-use join
 * token with the command a new host runs to join the cluster.
 */
import type { CommandModule } from 'yargs';
import type {
  ACLLink,
  ACLNodeIdentity,
  ACLServiceIdentity,
  ACLTokenRequest,
  JoinToken,
} from '../../../../api/index.js';
import { action, type CliContext, type CommandEnv, type GlobalArgs } from '../../../context.js';
import { UsageError } from '../../../exit.js';
import { formatJson } from '../../../output.js';
import { show } from '../../../views.js';
import { durationFlag, many } from '../flags.js';
import { tokenText } from '../views.js';

interface Args {
  description?: string;
  policyName?: string | string[];
  policyId?: string | string[];
  serviceIdentity?: string | string[];
  nodeIdentity?: string | string[];
  expiresTtl?: string;
  local?: boolean;
  join?: boolean;
  ttl?: string;
  node?: string;
}

/** Flags that shape a regular token, and so make no sense with --join. */
const TOKEN_ONLY: readonly [keyof Args, string][] = [
  ['policyName', 'policy-name'],
  ['policyId', 'policy-id'],
  ['serviceIdentity', 'service-identity'],
  ['nodeIdentity', 'node-identity'],
  ['expiresTtl', 'expires-ttl'],
  ['local', 'local'],
];

export function tokenCreateCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'create',
    describe: 'Create a token, or with --join a one-use token for a new host to join with',
    builder: (y) =>
      y
        .option('description', { type: 'string', requiresArg: true, describe: 'What it is for' })
        .option('policy-name', {
          type: 'string',
          requiresArg: true,
          describe: 'Link the policy with this name (repeatable)',
        })
        .option('policy-id', {
          type: 'string',
          requiresArg: true,
          describe: 'Link the policy with this ID (repeatable)',
        })
        .option('service-identity', {
          type: 'string',
          requiresArg: true,
          describe:
            'NAME[:DC1,DC2]: write on the service and its sidecar, read on the catalog (repeatable)',
        })
        .option('node-identity', {
          type: 'string',
          requiresArg: true,
          describe: 'NODE:DC: write on the node, read on services (repeatable)',
        })
        .option('expires-ttl', {
          type: 'string',
          requiresArg: true,
          describe: 'Delete the token after this long ("24h")',
        })
        .option('local', { type: 'boolean', describe: 'Valid in this datacenter only' })
        .option('join', {
          type: 'boolean',
          describe: 'Make a one-use join token and print the command a new host runs',
        })
        .option('ttl', {
          type: 'string',
          requiresArg: true,
          describe: "With --join: how long it stays valid (the server's default, 15m, if absent)",
        })
        .option('node', {
          type: 'string',
          requiresArg: true,
          describe: 'With --join: the only node name it may join as',
        })
        .example(
          '$0 acl token create --description "web on vm-1" --service-identity web',
          'A token for the web service',
        )
        .example(
          '$0 acl token create --policy-name ops-read --expires-ttl 8h',
          'A token that expires',
        )
        .example('$0 acl token create --node-identity vm-7:dc1', 'An agent token for node vm-7')
        .example(
          '$0 acl token create --join --ttl 30m --node vm-7 --http-addr 10.0.0.5:8500',
          'Let vm-7 join; prints the command to run there',
        ),
    handler: action<Args>(ctx, async (env, args) => {
      if (args.join) return createJoinToken(env, args);
      for (const flag of ['ttl', 'node'] as const) {
        if (args[flag] !== undefined) throw new UsageError(`--${flag} goes with --join`);
      }
      const body: ACLTokenRequest = {
        Description: args.description,
        Policies: policyLinks(args),
        ServiceIdentities: many(args.serviceIdentity).map(serviceIdentity),
        NodeIdentities: many(args.nodeIdentity).map(nodeIdentity),
        ExpirationTTL: durationFlag(args.expiresTtl, 'expires-ttl'),
        Local: args.local,
      };
      const token = await env.client.acl.tokenCreate(body, { signal: env.signal });
      show(env, token, () => tokenText(token));
    }),
  };
}

async function createJoinToken(env: CommandEnv, args: Args & GlobalArgs): Promise<void> {
  for (const [key, flag] of TOKEN_ONLY) {
    if (args[key] !== undefined) throw new UsageError(`--${flag} cannot be used with --join`);
  }
  const ttl = durationFlag(args.ttl, 'ttl');
  const token = await env.client.acl.joinTokenCreate(
    { TTL: ttl, Node: args.node, Description: args.description },
    { signal: env.signal },
  );
  // The server names its HTTPS address, the one a new host joins through; without it the
  // server serves no HTTPS, and no join can work.
  const command = token.JoinAddress ? joinCommand(token, token.JoinAddress, args.node) : undefined;
  if (env.format === 'json') {
    env.io.stdout(formatJson({ ...token, ...(command ? { Command: command } : {}) }));
  } else {
    const w = 18;
    const row = (label: string, value: string) => `${`${label}:`.padEnd(w)}${value}\n`;
    env.io.stdout(
      row('AccessorID', token.AccessorID) +
        row('SecretID', token.SecretID) +
        (args.node ? row('Node', args.node) : '') +
        row('Expiration Time', token.ExpirationTime) +
        row('CA Fingerprint', token.CAFingerprint) +
        (command
          ? `\nOn the new host, as root, run:\n  ${command}\n` +
            "Add --advertise <the new host's address> so other hosts reach its services.\n"
          : ''),
    );
  }
  if (!token.JoinAddress) {
    // The token exists (it expires unused); say why there is no command, and exit 1.
    throw new Error(
      'this server serves no HTTPS API, which joining needs: start it with --https-bind (on by default, port 8501), then make a new join token',
    );
  }
  if (isLoopback(token.JoinAddress)) {
    env.io.stderr(
      `Note: ${token.JoinAddress} is a loopback address; start the server with --advertise (or --https-bind) set to an address the new host can reach.\n`,
    );
  }
}

function isLoopback(address: string): boolean {
  const host = address.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/**
 * The command a new host runs: the token, the pinned CA, the server's HTTPS address, the node
 * name the token is bound to (it joins as nothing else), and the data dir the identity it gets
 * is kept in (the systemd unit's).
 */
export function joinCommand(token: JoinToken, address: string, node?: string): string {
  return [
    'trellis agent',
    `--join-token ${shellWord(token.SecretID)}`,
    `--ca-fingerprint ${shellWord(token.CAFingerprint)}`,
    `--retry-join ${shellWord(address)}`,
    ...(node !== undefined ? [`--node ${shellWord(node)}`] : []),
    `--data-dir ${AGENT_DATA_DIR}`,
  ].join(' ');
}

/** Where the systemd unit (systemd/trellis-agent.service) keeps the agent's data. */
const AGENT_DATA_DIR = '/var/lib/trellis/agent';

/** Quotes a word for a POSIX shell unless it is made of safe characters only. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_.:/@%+=,[\]-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function policyLinks(args: Args): ACLLink[] {
  return [
    ...many(args.policyId).map((ID) => ({ ID })),
    ...many(args.policyName).map((Name) => ({ Name })),
  ];
}

/** NAME or NAME:DC1,DC2. */
function serviceIdentity(spec: string): ACLServiceIdentity {
  const [name = '', dcs] = splitOnce(spec, ':');
  if (name === '') {
    throw new UsageError(`--service-identity "${spec}": expected NAME or NAME:DC1,DC2`);
  }
  if (dcs === undefined) return { ServiceName: name };
  const datacenters = dcs.split(',').map((d) => d.trim());
  if (datacenters.some((d) => d === '')) {
    throw new UsageError(`--service-identity "${spec}": expected NAME or NAME:DC1,DC2`);
  }
  return { ServiceName: name, Datacenters: datacenters };
}

/** NODE:DC. */
function nodeIdentity(spec: string): ACLNodeIdentity {
  const [node = '', dc = ''] = splitOnce(spec, ':');
  if (node === '' || dc === '' || dc.includes(':')) {
    throw new UsageError(`--node-identity "${spec}": expected NODE:DATACENTER, such as vm-7:dc1`);
  }
  return { NodeName: node, Datacenter: dc };
}

function splitOnce(text: string, sep: string): [string, string | undefined] {
  const i = text.indexOf(sep);
  return i < 0 ? [text.trim(), undefined] : [text.slice(0, i).trim(), text.slice(i + 1).trim()];
}
