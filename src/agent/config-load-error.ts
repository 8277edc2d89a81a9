/**
 * A config dir that does not load: every diagnostic (file:line:column), for the daemon to print.
 * Its own module so the `trellis` entry point can recognise it without loading the agent.
 */
export class ConfigLoadError extends Error {
  constructor(readonly diagnostics: string[]) {
    super(`configuration has ${diagnostics.length} error(s):\n${diagnostics.join('\n')}`);
  }
}
