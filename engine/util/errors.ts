/**
 * Errors the engine reports to users. `code` is stable (RPC clients and tests match on it);
 * `message` names the offending thing (file, field, value) and what was expected.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_NOT_FOUND'
  | 'DATA_NOT_FOUND'
  | 'DATA_CORRUPT'
  | 'DOWNLOAD_FAILED'
  | 'CHECKSUM_MISMATCH'
  | 'CHECKPOINT_CORRUPT'
  | 'CHECKPOINT_MISMATCH'
  /** A checkpoint asks for code to run (a pickle global outside the allowlist); nothing was executed. */
  | 'CHECKPOINT_UNSAFE'
  | 'RUN_NOT_FOUND'
  | 'RUN_BUSY'
  | 'BACKEND_UNAVAILABLE'
  | 'NATIVE_SETUP_FAILED'
  | 'NAN_LOSS'
  | 'CANCELLED'
  | 'INVALID_ARGUMENT';

export class AdvMoEError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'AdvMoEError';
  }
}

export function isAdvMoEError(e: unknown, code?: ErrorCode): e is AdvMoEError {
  return e instanceof AdvMoEError && (code === undefined || e.code === code);
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
