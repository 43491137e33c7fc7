// The container engine (Docker, or Podman's Docker API) as testcontainers reaches it: whether one answers, the
// image, and the operations on containers we started, by id (so any process can control a cluster from its
// cluster.json). testcontainers is loaded on first use only: the local provider and `pgproxy start` never load it.
import type { ContainerRuntimeClient } from 'testcontainers';

type Testcontainers = typeof import('testcontainers');
export type EngineContainer = ReturnType<ContainerRuntimeClient['container']['getById']>;
export type ContainerSummary = Awaited<ReturnType<ContainerRuntimeClient['container']['list']>>[number];
export type NetworkMode = 'host' | 'bridge';

export interface ContainerState {
  running: boolean;
  paused: boolean;
  /** The container's main process as the engine's host sees it; 0 when not running. */
  pid: number;
  exitCode: number;
}

/** testcontainers reads its settings from the environment when it first connects. */
function configureTestcontainers(network: NetworkMode): void {
  // pgproxy removes its own containers (down, Ctrl-C, and after a crash at the next start, by its labels). Ryuk,
  // testcontainers' reaper, would also remove a `pgproxy cluster up` cluster as soon as the command exits, and it
  // is an image to pull.
  process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
  // Host networking: the nodes listen on this machine's loopback. Without the override testcontainers may report
  // the bridge gateway (a private address never to connect to), or start a container to find it.
  if (network === 'host') process.env.TESTCONTAINERS_HOST_OVERRIDE ??= '127.0.0.1';
}

export class ImageMissingError extends Error {
  readonly code = 'DEVCLUSTER_IMAGE_MISSING';
  constructor(readonly image: string) {
    super(
      `the container image ${image} is not present, and pulling is off here (tests never pull). ` +
        `Build or load it first (CI: .ci/containers.sh builds localhost/pgproxy-postgres:15; with registry access: docker pull ${image}), ` +
        `or name another one with PGPROXY_IMAGE.`,
    );
    this.name = 'ImageMissingError';
  }
}

let connecting: Promise<Engine> | undefined;

export class Engine {
  private constructor(
    readonly tc: Testcontainers,
    readonly client: ContainerRuntimeClient,
  ) {}

  /** The engine testcontainers finds (DOCKER_HOST, ~/.testcontainers.properties, the usual sockets); one per process. */
  static connect(network: NetworkMode, timeoutMs = 15_000): Promise<Engine> {
    connecting ??= (async () => {
      configureTestcontainers(network);
      const tc = await import('testcontainers');
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer from the container engine within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        return new Engine(tc, await Promise.race([tc.getContainerRuntimeClient(), timeout]));
      } finally {
        clearTimeout(timer);
      }
    })();
    connecting.catch(() => {
      connecting = undefined;
    });
    return connecting;
  }

  /** True when a container engine answers (used to pick a provider when neither was asked for). */
  static async answers(network: NetworkMode, timeoutMs = 5_000): Promise<boolean> {
    return Engine.connect(network, timeoutMs).then(
      () => true,
      () => false,
    );
  }

  /** Make sure `image` is present: pull it when allowed, else fail with what to do. */
  async ensureImage(image: string, pull: boolean): Promise<void> {
    const name = this.tc.ImageName.fromString(image);
    if (await this.client.image.exists(name)) return;
    if (!pull) throw new ImageMissingError(image);
    await this.client.image.pull(name);
  }

  container(id: string): EngineContainer {
    return this.client.container.getById(id);
  }

  /** The container's state, or null when it no longer exists. */
  async state(id: string): Promise<ContainerState | null> {
    try {
      const s = (await this.container(id).inspect()).State;
      return { running: s.Running, paused: s.Paused, pid: s.Pid ?? 0, exitCode: s.ExitCode ?? 0 };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async start(id: string): Promise<void> {
    await this.container(id).start();
  }

  async kill(id: string, signal: NodeJS.Signals): Promise<void> {
    await this.container(id).kill({ signal });
  }

  async pause(id: string): Promise<void> {
    await this.container(id).pause();
  }

  async unpause(id: string): Promise<void> {
    await this.container(id).unpause();
  }

  /** Remove the container, running or not, with its anonymous volumes; gone already is fine. */
  async remove(id: string): Promise<void> {
    try {
      await this.container(id).remove({ force: true, v: true });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async exec(id: string, command: string[], user: string): Promise<{ exitCode: number; output: string }> {
    const r = await this.client.container.exec(this.container(id), command, { user });
    return { exitCode: r.exitCode, output: r.output };
  }

  /** The last `lines` lines of the container's output (the server log). */
  async logTail(id: string, lines = 25): Promise<string> {
    const raw = (await this.container(id).logs({ stdout: true, stderr: true, follow: false, tail: lines })) as unknown as Buffer;
    return demux(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw))).trimEnd();
  }

  /** Every container (running or not) carrying `label`. */
  async listLabelled(label: string): Promise<ContainerSummary[]> {
    return this.client.container.dockerode.listContainers({ all: true, filters: { label: [label] } });
  }

  async createNetwork(name: string, labels: Record<string, string>): Promise<void> {
    await this.client.network.create({ Name: name, Driver: 'bridge', Labels: labels, CheckDuplicate: true });
  }

  async removeNetwork(name: string): Promise<void> {
    try {
      await this.client.container.dockerode.getNetwork(name).remove();
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /** Names and labels of the networks carrying `label`. */
  async listLabelledNetworks(label: string): Promise<{ name: string; labels: Record<string, string> }[]> {
    const nets = await this.client.container.dockerode.listNetworks({ filters: { label: [label] } });
    return nets.map((n) => ({ name: n.Name, labels: n.Labels ?? {} }));
  }
}

function isNotFound(err: unknown): boolean {
  const e = err as { statusCode?: number; message?: string };
  return e?.statusCode === 404 || /no such (container|network)/i.test(e?.message ?? '');
}

/** The engine's log stream format for containers without a TTY: frames of [stream, 0, 0, 0, size (u32 BE)] + payload. */
function demux(buf: Buffer): string {
  const parts: Buffer[] = [];
  let off = 0;
  while (off + 8 <= buf.length) {
    const kind = buf[off] as number;
    if (kind > 2 || buf[off + 1] !== 0 || buf[off + 2] !== 0 || buf[off + 3] !== 0) return buf.toString('utf8'); // not framed
    const size = buf.readUInt32BE(off + 4);
    parts.push(buf.subarray(off + 8, off + 8 + size));
    off += 8 + size;
  }
  return parts.length ? Buffer.concat(parts).toString('utf8') : buf.toString('utf8');
}
