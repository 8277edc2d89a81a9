/**
 * The shape every benchmark has: it runs (starting and stopping its own server) and returns a
 * typed result, and it renders that result as the body of its section in docs/benchmarks.md.
 */

export type Log = (message: string) => void;

export interface Benchmark<R> {
  /** The name on the command line and the first word of its `## ` heading. */
  name: string;
  /** The rest of the heading. */
  title: string;
  run(log: Log): Promise<R>;
  /** Markdown for the section body (tables and how to read them), without the heading. */
  render(result: R): string;
}

export interface Outcome {
  name: string;
  title: string;
  result: unknown;
  markdown: string;
}

/** A benchmark with its result type hidden, so different benchmarks can share one list. */
export interface Runnable {
  name: string;
  title: string;
  execute(log: Log): Promise<Outcome>;
}

export function runnable<R>(b: Benchmark<R>): Runnable {
  return {
    name: b.name,
    title: b.title,
    async execute(log) {
      const result = await b.run(log);
      return { name: b.name, title: b.title, result, markdown: b.render(result) };
    },
  };
}
