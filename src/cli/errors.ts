/**
 * The CLI's user errors: a bad path, unreadable data, a shape the model does not take, an
 * option out of range. The entry point prints them as one line on stderr and exits with 2.
 */
export class CliError extends Error {
  override readonly name = 'CliError';
}

/** Exit code of every user error (bad path, bad data, unsupported layer, bad option). */
export const USER_ERROR_EXIT_CODE = 2;
