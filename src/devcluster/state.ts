// cluster.json: what a dev cluster's directory records about it, so another process (`pgproxy cluster down`, a
// test worker, the next `up`) can find and control it. Each provider adds its own fields to the common ones.
import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ClusterInfo, ProviderName } from './cluster-types.js';

export const STATE_FILE = 'cluster.json';

export interface ClusterStateBase {
  version: 1;
  /** Absent in files written before there were providers: local. */
  provider?: ProviderName;
  /** The directory the user asked for (differs from info.dir when the local provider had to fall back). */
  requestedDir: string;
  info: ClusterInfo;
  synchronousStandby: boolean;
  createdAt: string;
  /** False while creation runs: an interrupted creation is torn down and redone by the next up(). */
  complete?: boolean;
}

/** The directory used instead of `requested` when the postgres OS user cannot reach it (local provider as root). */
export function fallbackDir(requested: string): string {
  const hash = createHash('sha256').update(path.resolve(requested)).digest('hex').slice(0, 10);
  return path.join(os.tmpdir(), `pgproxy-cluster-${hash}`);
}

export function providerOf(state: ClusterStateBase): ProviderName {
  return state.provider ?? 'local';
}

export async function readState<S extends ClusterStateBase = ClusterStateBase>(dir: string): Promise<S | null> {
  let text: string;
  try {
    text = await readFile(path.join(dir, STATE_FILE), 'utf8');
  } catch {
    return null;
  }
  const state = JSON.parse(text) as S;
  if (state.version !== 1 || !state.info?.nodes?.length) {
    throw new Error(`${path.join(dir, STATE_FILE)}: not a pgproxy devcluster state file (version ${String(state.version)})`);
  }
  state.info.provider ??= providerOf(state);
  return state;
}

/** Where the state of the cluster requested at `requested` lives, if anywhere. */
export async function findState<S extends ClusterStateBase = ClusterStateBase>(requested: string): Promise<S | null> {
  return (await readState<S>(requested)) ?? (await readState<S>(fallbackDir(requested)));
}

/** Write `state` into `dir` atomically, keeping the createdAt of the file it replaces. */
export async function writeState(dir: string, state: ClusterStateBase): Promise<void> {
  const prev = await readState(dir).catch(() => null);
  const next = prev ? { ...state, createdAt: prev.createdAt } : state;
  const file = path.join(dir, STATE_FILE);
  await writeFile(`${file}.tmp`, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o644 });
  await rename(`${file}.tmp`, file);
}
