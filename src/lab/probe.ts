/**
 * HTTP GETs made from inside a namespace. This process cannot open sockets in another
 * network namespace, so a short-lived `node -e` child does them there and prints the answers
 * as JSON; several URLs share one child.
 */
import { run } from './sys.js';

export interface ProbeAnswer {
  url: string;
  status: number;
  body: string;
}

// Every URL is fetched; one that fails is reported with status 0, so the caller decides.
const SCRIPT = `
const urls = process.argv.slice(1);
Promise.all(urls.map((url) =>
  fetch(url, { signal: AbortSignal.timeout(3000) })
    .then(async (r) => ({ url, status: r.status, body: await r.text() }))
    .catch((e) => ({ url, status: 0, body: String(e && e.cause ? e.cause : e) })),
)).then((answers) => process.stdout.write(JSON.stringify(answers)));
`;

/** GETs `urls` from inside `ns`, run with the node binary at `node`. */
export async function probeInNamespace(
  node: string,
  ns: string,
  urls: readonly string[],
): Promise<ProbeAnswer[]> {
  const { stdout } = await run('ip', ['netns', 'exec', ns, node, '-e', SCRIPT, ...urls], 10_000);
  return JSON.parse(stdout) as ProbeAnswer[];
}

/** The body as JSON when the answer was a 200, else undefined. */
export function jsonBody<T>(answer: ProbeAnswer | undefined): T | undefined {
  if (!answer || answer.status !== 200) return undefined;
  try {
    return JSON.parse(answer.body) as T;
  } catch {
    return undefined;
  }
}
