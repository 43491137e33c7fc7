/** Runs a simple query of pgproxy's own on a raw backend connection that no session owns, discarding results. */
import { BackendError, NodeConnectionError } from '../errors.js';
import { parseErrorFields } from '../wire/backend.js';
import { BackendCode } from '../wire/codes.js';
import { Framer } from '../wire/framer.js';
import { queryMessage } from '../wire/frontend.js';
import type { BackendConnection, BackendOwner } from './backend.js';

export interface InternalResult {
  rows: (string | null)[][];
}

export function runInternalQuery(conn: BackendConnection, sql: string, timeoutMs: number): Promise<InternalResult> {
  return new Promise((resolve, reject) => {
    const framer = new Framer(1 << 26);
    const rows: (string | null)[][] = [];
    let error: BackendError | null = null;
    const timer = setTimeout(() => {
      finish();
      conn.destroy();
      reject(new NodeConnectionError(conn.node.name, `internal query timed out on ${conn.node.name}`));
    }, timeoutMs);
    const finish = (): void => {
      clearTimeout(timer);
      conn.owner = null;
    };
    const owner: BackendOwner = {
      onBackendData(_c, chunk) {
        // Rows are decoded to strings as they come (a partial message is copied by the framer): nothing is kept.
        try {
          framer.push(chunk);
          while (framer.next()) {
            const body = framer.buf.subarray(framer.bodyStart, framer.end);
            if (framer.type === BackendCode.DataRow) rows.push(decodeRow(body));
            else if (framer.type === BackendCode.ErrorResponse) {
              const f = parseErrorFields(body);
              error = new BackendError(f.code, f.message, f.severity);
            } else if (framer.type === BackendCode.ReadyForQuery) {
              finish();
              if (error) reject(error);
              else resolve({ rows });
              return false;
            }
          }
        } catch (err) {
          finish();
          conn.destroy();
          reject(err);
        }
        return false;
      },
      onBackendClosed(c, err) {
        finish();
        reject(err ?? new NodeConnectionError(c.node.name, `connection to ${c.node.name} lost`));
      },
      onBackendDrain() {},
    };
    conn.owner = owner;
    conn.write(queryMessage(sql));
  });
}

function decodeRow(body: Buffer): (string | null)[] {
  const n = body.readInt16BE(0);
  const out: (string | null)[] = [];
  let i = 2;
  for (let c = 0; c < n; c++) {
    const len = body.readInt32BE(i);
    i += 4;
    if (len < 0) out.push(null);
    else {
      out.push(body.toString('utf8', i, i + len));
      i += len;
    }
  }
  return out;
}
