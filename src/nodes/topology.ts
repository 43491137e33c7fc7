/**
 * What pgproxy knows of its nodes: up or down, primary or standby, replication lag, and per-node counters.
 * Written by the health checker (and by sessions that see a node fail), read by the router and admin.
 */
import { EventEmitter } from 'node:events';
import { Histogram } from '../lib/histogram.js';

export type NodeRole = 'primary' | 'standby' | 'unknown';

export interface NodeState {
  readonly id: number;
  name: string;
  host: string;
  port: number;
  weight: number;
  up: boolean;
  role: NodeRole;
  lastStatusChange: Date;
  lastCheck: Date | null;
  lastError: string | null;
  /** Current WAL position (primary) or last replayed position (standby). */
  lsn: bigint | null;
  /** Bytes the standby's replay is behind the primary's current position. */
  lagBytes: number | null;
  /** Milliseconds behind: 0 once replayed up to the primary's position, else the age of the last replayed transaction. */
  lagMs: number | null;
  /** Age of the standby's last replayed transaction (from pg_last_xact_replay_timestamp()), in ms. */
  replayAgeMs: number | null;
  /** When lsn / lagBytes / lagMs were measured (Date.now(); 0: never): a bound on staleness adds its age. */
  measuredAt: number;
  /** As the primary's pg_stat_replication reports this standby (empty when it is not streaming or on a primary). */
  replicationState: string;
  replicationSyncState: string;
  /**
   * Standby only: whether it streams from the current primary (listed in the primary's pg_stat_replication).
   * null when there is no primary to ask (then standbys keep serving reads).
   */
  following: boolean | null;
  /** The name the standby's WAL receiver reports to the primary (its application_name). */
  walReceiverName: string | null;
  /** Statements classified as reads that this node served. */
  selectCount: number;
  /** Units of work (Queries, or batches up to Sync) this node completed for clients. */
  queries: number;
  /** Units routed to this node because they write (or must run on the primary). */
  writes: number;
  /** Bytes forwarded from clients to this node, and from it to clients. */
  bytesToNode: number;
  bytesFromNode: number;
  /** Sum of the units' durations (send to ReadyForQuery), for the average. */
  queryTimeMs: number;
  latency: Histogram;
  /** Failed health checks and connection errors seen on this node. */
  errorCount: number;
  /** Duration of the last health check. */
  checkDurationMs: number | null;
  /** Detached by an operator (DETACH NODE): takes no work until ATTACH NODE, whatever its health. */
  detached: boolean;
  /** No longer in the configuration (after a reload); kept so that node ids stay stable. */
  removed: boolean;
  removedByReload: boolean;
}

export interface TopologyChange {
  node: string;
  from: string;
  to: string;
  /** The node's first check: discovery, not a change. */
  first: boolean;
}

export class Topology extends EventEmitter {
  readonly nodes: NodeState[];

  constructor(backends: { name: string; host: string; port: number; weight: number }[]) {
    super();
    const now = new Date();
    this.nodes = backends.map((b, id) => ({
      id,
      name: b.name,
      host: b.host,
      port: b.port,
      weight: b.weight,
      up: false,
      role: 'unknown' as NodeRole,
      lastStatusChange: now,
      lastCheck: null,
      lastError: null,
      lsn: null,
      lagBytes: null,
      lagMs: null,
      replayAgeMs: null,
      measuredAt: 0,
      replicationState: '',
      replicationSyncState: '',
      following: null,
      walReceiverName: null,
      selectCount: 0,
      queries: 0,
      writes: 0,
      bytesToNode: 0,
      bytesFromNode: 0,
      queryTimeMs: 0,
      latency: new Histogram(),
      errorCount: 0,
      checkDurationMs: null,
      detached: false,
      removed: false,
      removedByReload: false,
    }));
  }

  /** The one node that is up and not in recovery; null when there is none, or more than one. */
  primary(): NodeState | null {
    let found: NodeState | null = null;
    for (const n of this.nodes) {
      if (n.up && n.role === 'primary') {
        if (found) return null;
        found = n;
      }
    }
    return found;
  }

  primaryCount(): number {
    let c = 0;
    for (const n of this.nodes) if (n.up && n.role === 'primary') c++;
    return c;
  }

  /** Records a node's state; emits 'change' when up/down or role changed. */
  setNodeState(id: number, up: boolean, role: NodeRole, error: string | null): void {
    const n = this.nodes[id]!;
    if (error !== null) n.errorCount++;
    // A detached node is out of service whatever its health says.
    if (n.detached) up = false;
    const first = n.lastCheck === null;
    n.lastCheck = new Date();
    n.lastError = error;
    const before = describe(n);
    if (n.up !== up || (up && n.role !== role)) {
      n.up = up;
      if (up) n.role = role;
      n.lastStatusChange = new Date();
      const change: TopologyChange = { node: n.name, from: first ? 'unknown' : before, to: describe(n), first };
      this.emit('change', change, n);
    }
  }

  markDown(id: number, reason: string): void {
    this.setNodeState(id, false, this.nodes[id]!.role, reason);
  }

  /**
   * Applies a reloaded backends list, matching nodes by name: weights and addresses change in place, new
   * nodes are added (down until checked), and removed ones are detached for good. Returns ids whose address changed.
   */
  syncBackends(backends: readonly { name: string; host: string; port: number; weight: number }[]): number[] {
    const moved: number[] = [];
    const seen = new Set<string>();
    for (const b of backends) {
      seen.add(b.name);
      const n = this.nodes.find((x) => x.name === b.name);
      if (n === undefined) {
        const fresh = new Topology([b]).nodes[0]!;
        this.nodes.push({ ...fresh, id: this.nodes.length });
        continue;
      }
      n.weight = b.weight;
      n.removed = false;
      if (n.host !== b.host || n.port !== b.port) {
        n.host = b.host;
        n.port = b.port;
        moved.push(n.id);
      }
      if (n.detached && n.removedByReload) {
        n.detached = false;
        n.removedByReload = false;
      }
    }
    for (const n of this.nodes) {
      if (!seen.has(n.name) && !n.removed) {
        n.removed = true;
        n.removedByReload = true;
        n.weight = 0;
        this.detach(n.id);
      }
    }
    return moved;
  }

  /** DETACH NODE: out of service until attached again (pgpool's pcp_detach_node). */
  detach(id: number): void {
    const n = this.nodes[id]!;
    n.detached = true;
    this.setNodeState(id, false, n.role, null);
  }

  /** ATTACH NODE: back in service at its next successful health check. */
  attach(id: number): void {
    this.nodes[id]!.detached = false;
  }
}

function describe(n: NodeState): string {
  return n.up ? `up ${n.role}` : n.detached ? 'detached' : 'down';
}

/** The health view of one node as it crosses from the primary process to workers (counters stay per process). */
export interface NodeSnapshot {
  id: number;
  name: string;
  host: string;
  port: number;
  weight: number;
  up: boolean;
  role: NodeRole;
  lastStatusChange: number;
  lastCheck: number | null;
  lastError: string | null;
  lsn: string | null;
  lagBytes: number | null;
  lagMs: number | null;
  replayAgeMs: number | null;
  measuredAt: number;
  replicationState: string;
  replicationSyncState: string;
  following: boolean | null;
  errorCount: number;
  checkDurationMs: number | null;
  detached: boolean;
  removed: boolean;
}

export function snapshotOf(t: Topology): NodeSnapshot[] {
  return t.nodes.map((n) => ({
    id: n.id,
    name: n.name,
    host: n.host,
    port: n.port,
    weight: n.weight,
    up: n.up,
    role: n.role,
    lastStatusChange: n.lastStatusChange.getTime(),
    lastCheck: n.lastCheck?.getTime() ?? null,
    lastError: n.lastError,
    lsn: n.lsn === null ? null : n.lsn.toString(),
    lagBytes: n.lagBytes,
    lagMs: n.lagMs,
    replayAgeMs: n.replayAgeMs,
    measuredAt: n.measuredAt,
    replicationState: n.replicationState,
    replicationSyncState: n.replicationSyncState,
    following: n.following,
    errorCount: n.errorCount,
    checkDurationMs: n.checkDurationMs,
    detached: n.detached,
    removed: n.removed,
  }));
}

/** A worker takes the primary process's view; 'change' is emitted like after its own checks. */
export function applySnapshot(t: Topology, snapshot: readonly NodeSnapshot[]): void {
  for (const s of snapshot) {
    let n = t.nodes[s.id];
    if (n === undefined) {
      t.syncBackends([...t.nodes.filter((x) => !x.removed).map((x) => ({ name: x.name, host: x.host, port: x.port, weight: x.weight })), { name: s.name, host: s.host, port: s.port, weight: s.weight }]);
      n = t.nodes[s.id]!;
    }
    n.name = s.name;
    n.host = s.host;
    n.port = s.port;
    n.weight = s.weight;
    n.lsn = s.lsn === null ? null : BigInt(s.lsn);
    n.lagBytes = s.lagBytes;
    n.lagMs = s.lagMs;
    n.replayAgeMs = s.replayAgeMs;
    n.measuredAt = s.measuredAt;
    n.replicationState = s.replicationState;
    n.replicationSyncState = s.replicationSyncState;
    n.following = s.following;
    n.errorCount = s.errorCount;
    n.checkDurationMs = s.checkDurationMs;
    n.removed = s.removed;
    n.detached = false;
    const first = n.lastCheck === null;
    if (n.up !== s.up || (s.up && n.role !== s.role)) {
      const from = first ? 'unknown' : n.up ? `up ${n.role}` : 'down';
      n.up = s.up;
      n.role = s.role;
      n.lastStatusChange = new Date(s.lastStatusChange);
      n.lastCheck = s.lastCheck === null ? null : new Date(s.lastCheck);
      n.detached = s.detached;
      t.emit('change', { node: n.name, from, to: s.up ? `up ${s.role}` : s.detached ? 'detached' : 'down', first } satisfies TopologyChange, n);
    }
    n.role = s.role;
    n.detached = s.detached;
    n.lastStatusChange = new Date(s.lastStatusChange);
    n.lastCheck = s.lastCheck === null ? null : new Date(s.lastCheck);
    n.lastError = s.lastError;
  }
}

/** An LSN as PostgreSQL writes it: 'X/Y', both halves hexadecimal in upper case. */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** Parses an LSN like '0/3000148' into a number of bytes. */
export function parseLsn(text: string | null | undefined): bigint | null {
  if (!text) return null;
  const slash = text.indexOf('/');
  if (slash < 0) return null;
  return (BigInt('0x' + text.slice(0, slash)) << 32n) + BigInt('0x' + text.slice(slash + 1));
}
