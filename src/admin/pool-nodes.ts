/** `SHOW POOL_NODES` with pgpool-II 4.3's columns, in its order, answered by pgproxy on any client connection. */
import type { NodeState } from '../nodes/topology.js';
import { normalisedWeights } from '../router/balancer.js';
import { resultSet, textColumn } from '../wire/backend.js';

const COLUMNS = [
  'node_id',
  'hostname',
  'port',
  'status',
  'pg_status',
  'lb_weight',
  'role',
  'pg_role',
  'select_cnt',
  'load_balance_node',
  'replication_delay',
  'replication_state',
  'replication_sync_state',
  'last_status_change',
].map(textColumn);

export function poolNodesRows(nodes: readonly NodeState[], loadBalanceNodeId: number | null): string[][] {
  const weights = normalisedWeights(nodes);
  return nodes.map((n, i) => {
    const role = n.role === 'unknown' ? 'unknown' : n.role;
    return [
      String(n.id),
      n.host,
      String(n.port),
      n.up ? 'up' : 'down',
      n.up ? 'up' : 'down',
      weights[i]!.toFixed(6),
      role,
      n.up ? role : 'unknown',
      String(n.selectCount),
      n.id === loadBalanceNodeId ? 'true' : 'false',
      n.role === 'standby' && n.lagBytes != null ? String(n.lagBytes) : '0',
      n.role === 'standby' ? n.replicationState : '',
      n.role === 'standby' ? n.replicationSyncState : '',
      formatTimestamp(n.lastStatusChange),
    ];
  });
}

export function poolNodesResult(nodes: readonly NodeState[], loadBalanceNodeId: number | null): Buffer {
  return resultSet(COLUMNS, poolNodesRows(nodes, loadBalanceNodeId), `SELECT ${nodes.length}`);
}

function formatTimestamp(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
