/** What a client's statement does to the session's settings, as the link that ran it records it until ReadyForQuery. */
import type { SessionDefaults } from '../router/classify/index.js';

/** A session setting sent in a segment: the SQL to replay elsewhere and what it does to the rest. */
export interface SegmentSetting {
  readonly sql: string;
  /** Lowercased name of the one parameter a plain SET/RESET changes (older entries for it become redundant), else null. */
  readonly name: string | null;
  readonly resetsAll: boolean;
  readonly discardsAll: boolean;
  /** What it does to the session's default transaction access mode and isolation. */
  readonly defaults: SessionDefaults | null;
}
