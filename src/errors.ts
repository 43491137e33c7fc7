import { errorResponse, type Severity } from './wire/backend.js';
import { SqlState } from './wire/codes.js';

/** An error pgproxy reports to a client as an ErrorResponse with a real SQLSTATE. */
export class ProxyError extends Error {
  constructor(
    readonly sqlstate: string,
    message: string,
    readonly severity: Severity = 'ERROR',
    readonly detail?: string,
  ) {
    super(message);
  }

  toFrame(): Buffer {
    return errorResponse({ severity: this.severity, code: this.sqlstate, message: this.message, ...(this.detail ? { detail: this.detail } : {}) });
  }
}

/** An ErrorResponse a backend sent (during login, or to a query the proxy issued itself). */
export class BackendError extends Error {
  constructor(
    readonly sqlstate: string,
    message: string,
    readonly severity: string,
    readonly frame: Buffer | null = null,
  ) {
    super(message);
  }
}

/** The connection to a node broke or could not be made: counts against the node's health. */
export class NodeConnectionError extends Error {
  readonly sqlstate = SqlState.ConnectionFailure;
  constructor(
    readonly nodeName: string,
    message: string,
  ) {
    super(message);
  }
}

/** Whether a backend's SQLSTATE says the node itself is unavailable (57P01..57P05: shutdown, crash, cannot connect now). */
export function isNodeUnavailableState(sqlstate: string): boolean {
  return sqlstate.startsWith('57P');
}
