/** Finds the policy an "ID | --name N" argument pair names, for read and delete. */
import type { ACLPolicy } from '../../../../api/index.js';
import type { CommandEnv } from '../../../context.js';
import { UsageError } from '../../../exit.js';

export interface PolicyRef {
  id?: string;
  name?: string;
}

/** Checks that exactly one of the two was given. */
export function policyRef(args: PolicyRef): PolicyRef {
  if (args.id !== undefined && args.name !== undefined) {
    throw new UsageError('Give a policy ID or --name, not both');
  }
  if (args.id === undefined && args.name === undefined) {
    throw new UsageError('Give a policy ID, or --name');
  }
  if ((args.id ?? args.name) === '') throw new UsageError('The policy ID or name is empty');
  return args;
}

/** The policy, or null when none has that ID or name. */
export async function findPolicy(env: CommandEnv, ref: PolicyRef): Promise<ACLPolicy | null> {
  const opts = { signal: env.signal };
  const res =
    ref.name !== undefined
      ? await env.client.acl.policyReadByName(ref.name, opts)
      : await env.client.acl.policyRead(ref.id!, opts);
  return res.value;
}

/** "with ID x" or "named x", for messages. */
export function describeRef(ref: PolicyRef): string {
  return ref.name !== undefined ? `named "${ref.name}"` : `with ID ${ref.id}`;
}
