/** What the routing loop and the replies need from the session that owns the client socket. */
import type { Logger } from 'pino';

export interface RoutingHost {
  readonly log: Logger;
  /** The pid pgproxy gave the client in BackendKeyData. */
  readonly clientPid: number;
  /** When the client's input being handled arrived (performance.now()): the start of units sent now. */
  readonly lastActivity: number;
  /** Returns true when the bytes could not all go to the kernel at once (some are queued, by reference). */
  writeClient(bytes: Buffer): boolean;
  /** Re-run held client input (a wait ended). */
  resume(): void;
  /** A backend's socket is full: stop reading the client until it drains. */
  pauseInput(): void;
  resumeInput(): void;
  /** The backend ended the session for a protocol violation by the client: close it as PostgreSQL would. */
  closeAfterProtocolError(): void;
  /** Closes the client at once (a backend was lost in the middle of a message). */
  destroy(reason: string): void;
}
