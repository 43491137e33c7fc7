// Raw-protocol exchanges compared line by line: replies as short comparable lines, the usual client connections,
// the extended-protocol unit, and the table a test file sets up on the primary.
import { afterAll, beforeAll, expect } from 'vitest';
import type { RunningProxy } from '../../../src/server.js';
import type { ClusterInfo } from '../../../src/devcluster/cluster.js';
import { connectNode, sharedClusterHandle } from './cluster.js';
import { startTestProxy } from './proxy.js';
import { commandTag, dataRow, errorFields, type Msg, ProtoClient, readyStatus, serialize } from './proto-client.js';

/**
 * Replies as comparable lines: `C SET`, `Z I`, `E ERROR 42704`, `N WARNING 25P01`, `D ["auto"]` (rows only with
 * `rows`: they may differ by node), other types as they are; ParameterStatus left out.
 */
export function replyLines(msgs: readonly Msg[], opts: { rows?: boolean } = {}): string[] {
  const rows = opts.rows ?? true;
  return msgs
    .filter((m) => m.type !== 'S')
    .map((m) => {
      switch (m.type) {
        case 'C':
          return `C ${commandTag(m.body)}`;
        case 'Z':
          return `Z ${readyStatus(m)}`;
        case 'E':
        case 'N': {
          const f = errorFields(m.body);
          return `${m.type} ${f.V ?? f.S} ${f.C}`;
        }
        case 'D':
          return rows ? `D ${JSON.stringify(dataRow(m.body))}` : 'D';
        default:
          return m.type;
      }
    });
}

/** A raw client logged in as the cluster's app user at host:port (pgproxy, or a node directly). */
export function connectApp(info: ClusterInfo, host: string, port: number, params?: Record<string, string>): Promise<ProtoClient> {
  return ProtoClient.connect({ host, port, user: info.users.app.name, password: info.users.app.password, database: info.database, ...(params ? { params } : {}) });
}

/** Parse, Bind, Describe (portal), Execute and Sync of `sql`, unnamed. */
export function pbdes(sql: string): Buffer {
  return Buffer.concat([
    serialize.parse({ name: '', text: sql }),
    serialize.bind({ statement: '', portal: '', values: [] }),
    serialize.describe({ type: 'P', name: '' }),
    serialize.execute({ portal: '', rows: 0 }),
    serialize.sync(),
  ]);
}

/** SHOW name through the raw client: its one value (the exchange must be exactly T D C Z). */
export async function showValue(c: ProtoClient, name: string): Promise<string | null> {
  const msgs = await c.query(`SHOW ${name}`);
  expect(replyLines(msgs).filter((l) => !l.startsWith('D'))).toEqual(['T', 'C SHOW', `Z ${readyStatus(msgs.at(-1)!)}`]);
  return dataRow(msgs.find((m) => m.type === 'D')!.body)[0]!;
}

/** Runs `statements` on the primary as the app user, then waits until both standbys have replayed them. */
export async function setUpOnPrimary(info: ClusterInfo, statements: readonly string[]): Promise<void> {
  const c = await connectNode(info, 0);
  try {
    for (const sql of statements) await c.query(sql);
  } finally {
    await c.end();
  }
  await (await sharedClusterHandle()).waitForReplay();
}

/** A test file's pgproxy on the shared cluster, with raw clients to it and to the primary directly. */
export interface AppProxy {
  /** The running proxy (set once the file's beforeAll has run). */
  readonly proxy: RunningProxy;
  connectProxy(params?: Record<string, string>): Promise<ProtoClient>;
  connectPrimary(): Promise<ProtoClient>;
  /** Sends `sql` as a simple Query; the replies as lines (replyLines). */
  exchange(c: ProtoClient, sql: string): Promise<string[]>;
}

/** Starts a pgproxy before the file's tests, after running `setUp` on the primary; closes it after them. */
export function useAppProxy(info: ClusterInfo, setUp: readonly string[]): AppProxy {
  let proxy: RunningProxy | undefined;
  beforeAll(async () => {
    proxy = await startTestProxy(info);
    await setUpOnPrimary(info, setUp);
  });
  afterAll(async () => {
    await proxy?.close();
  });
  const running = (): RunningProxy => {
    if (proxy === undefined) throw new Error('the proxy is not started yet');
    return proxy;
  };
  return {
    get proxy() {
      return running();
    },
    connectProxy: (params) => connectApp(info, running().host, running().port, params),
    connectPrimary: () => connectApp(info, info.nodes[0]!.host, info.nodes[0]!.port),
    exchange: async (c, sql) => replyLines(await c.query(sql)),
  };
}
