/** A subcommand of the `elibadcode` CLI. `run` returns the process exit code. */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}

/** Thrown for mistakes a user can fix (bad flag, missing file): printed without a stack trace. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Exit codes shared by every subcommand. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;
