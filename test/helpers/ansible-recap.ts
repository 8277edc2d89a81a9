/** Reading ansible-playbook's output in tests. */

/** The recap's counters per host: `agent1 : ok=24 changed=0 unreachable=0 failed=0 ...`. */
export function recap(output: string): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  const tail = output.slice(output.lastIndexOf('PLAY RECAP'));
  for (const line of tail.split('\n').slice(1)) {
    const m = /^(\S+)\s+:\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const counts: Record<string, number> = {};
    for (const [, k, v] of m[2]!.matchAll(/(\w+)=(\d+)/g)) counts[k!] = Number(v);
    out.set(m[1]!, counts);
  }
  return out;
}
