/** `lab exec HOST [--user U] -- CMD`: a command in a host's namespace, with this terminal. */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { inNamespace } from './processes.js';
import { knownTopology, presentNamespaces, resolveLab, type LabOptions } from './options.js';
import { LabError, requireRoot, requireTools } from './sys.js';
import { userExists } from './users.js';

export interface ExecOptions {
  /** Run as this unix user (via setpriv), else as root. */
  user?: string;
}

/** Runs argv in `host`'s namespace with inherited stdio; resolves to its exit code. */
export async function labExec(
  opts: LabOptions,
  host: string,
  argv: readonly string[],
  exec: ExecOptions = {},
): Promise<number> {
  requireRoot();
  await requireTools(['ip', 'setpriv']);
  if (argv.length === 0) throw new LabError('nothing to run: put the command after --');
  const lab = resolveLab(opts);
  const present = await presentNamespaces(lab.name);
  const topo = knownTopology(lab, present);
  if (!topo) throw new LabError(`lab ${lab.name} is not up: start it with \`trellis lab up\``);
  const target = topo.hosts.find((h) => h.name === host);
  if (!target)
    throw new LabError(
      `unknown host "${host}": lab ${lab.name} has ${topo.hosts.map((h) => h.name).join(', ')}`,
    );
  if (!present.includes(target.namespace))
    throw new LabError(`namespace ${target.namespace} of host ${host} does not exist`);
  if (exec.user !== undefined && !(await userExists(exec.user)))
    throw new LabError(`unknown user "${exec.user}"`);
  const [cmd, ...args] = inNamespace(
    target.namespace,
    argv,
    exec.user !== undefined ? { user: exec.user } : undefined,
  );
  const child = spawn(cmd!, args, { stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.once('error', (err) => reject(new LabError(`cannot run ip netns exec: ${err.message}`)));
    child.once('exit', (code, sig) =>
      resolve(code ?? 128 + (sig ? (constants.signals[sig] ?? 0) : 0)),
    );
  });
}
