/** A `vigil` subcommand. Service packages export a list of these from their "./cli" entry. */
export interface Command {
  /** One or two words: "capture", "train pst", "rules". */
  name: string;
  summary: string;
  usage?: string;
  /** Returns the process exit code. */
  run(args: string[]): Promise<number>;
}

export interface CommandModule {
  commands: Command[];
}

export const EXIT_OK = 0;
/** The command ran but found a problem (e.g. a check failed). */
export const EXIT_FAILURE = 1;
/** The command line was wrong. */
export const EXIT_USAGE = 2;
/** A service the command needs cannot be reached. */
export const EXIT_UNAVAILABLE = 69;
/** A bug. */
export const EXIT_SOFTWARE = 70;
