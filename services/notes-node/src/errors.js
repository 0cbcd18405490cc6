// Errors a client may see. Every refusal is an ApiError: an HTTP status, the
// canonical code of the same situation in Tenantry's gRPC APIs, a stable
// UPPER_SNAKE reason for programs and a message for people. Nothing else
// reaches a client: an unexpected error becomes 500 INTERNAL, and database
// or registry details stay in the log.

/** An error meant for the client, with its HTTP status and stable reason. */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status
   * @param {string} code canonical code (UNAUTHENTICATED, NOT_FOUND, ...)
   * @param {string} reason stable reason (ACCESS_TOKEN_WRONG_TENANT, ...)
   * @param {string} message what a person can act on
   * @param {{cause?: unknown, retryAfterSeconds?: number}} [options]
   */
  constructor(status, code, reason, message, options = {}) {
    super(message, { cause: options.cause });
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.reason = reason;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  /** The JSON body the client gets. */
  toJSON() {
    return { code: this.code, reason: this.reason, message: this.message };
  }
}

export const invalidArgument = (reason, message, options) =>
  new ApiError(400, 'INVALID_ARGUMENT', reason, message, options);

export const failedPrecondition = (reason, message, options) =>
  new ApiError(400, 'FAILED_PRECONDITION', reason, message, options);

export const unauthenticated = (reason, message, options) =>
  new ApiError(401, 'UNAUTHENTICATED', reason, message, options);

export const notFound = (reason, message, options) =>
  new ApiError(404, 'NOT_FOUND', reason, message, options);

export const internal = (reason, message, options) =>
  new ApiError(500, 'INTERNAL', reason, message, options);

/** An outage: the client should retry shortly (Retry-After is set). */
export const unavailable = (reason, message, options = {}) =>
  new ApiError(503, 'UNAVAILABLE', reason, message, { retryAfterSeconds: 1, ...options });

/** Turns anything thrown into the ApiError the client gets. */
export function toApiError(err) {
  if (err instanceof ApiError) {
    return err;
  }
  return internal('INTERNAL', 'something went wrong on our side', { cause: err });
}
