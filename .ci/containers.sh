#!/usr/bin/env bash
# A container engine for pgproxy's container pass (PGPROXY_CLUSTER=docker): rootful podman serving the Docker API on
# a unix socket, and a PostgreSQL 15 image built from Debian's packages, because CI machines reach Debian's mirror but
# no container registry. It changes the machine (packages, /etc/containers, a root service): CI only, never `npm test`.
#
#   .ci/containers.sh          set up (idempotent; about 2.5 min on a fresh machine), then print the environment
#   .ci/containers.sh stop     remove the containers of run $PGPROXY_RUN_LABEL (all pgproxy ones if unset) and stop
#                              the service this script started
#
# Networking: CI machines have loopback only. Containers run with host networking (containers.conf netns = "host"),
# images are built with --network=host --pull=never, and no bridge network is ever created.
set -euo pipefail

IMAGE=${PGPROXY_IMAGE:-localhost/pgproxy-postgres:15}
BASE=localhost/pgproxy-debian:bookworm
WORK=${PGPROXY_CONTAINERS_WORK:-/var/tmp/pgproxy-containers}
SOCK=/run/podman/podman.sock
PIDFILE=$WORK/podman-service.pid
LABEL=pgproxy.devcluster

say() { echo "[containers $(date +%T)] $*" >&2; }
ping_engine() { curl -sf --max-time 2 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; }

stop() {
  if command -v podman >/dev/null; then
    local filter=(--filter "label=$LABEL")
    [ -n "${PGPROXY_RUN_LABEL:-}" ] && filter=(--filter "label=pgproxy.run=$PGPROXY_RUN_LABEL")
    local ids
    ids=$(podman ps -aq "${filter[@]}" 2>/dev/null || true)
    if [ -n "$ids" ]; then
      say "removing containers: $(echo $ids)"
      # shellcheck disable=SC2086
      podman rm -f -v $ids >/dev/null || true
    fi
  fi
  if [ -f "$PIDFILE" ]; then
    local pid
    pid=$(cat "$PIDFILE")
    if kill -0 "$pid" 2>/dev/null; then
      say "stopping the podman service (pid $pid)"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
  fi
}

if [ "${1:-}" = stop ]; then
  stop
  exit 0
fi
[ $# -eq 0 ] || { echo "usage: .ci/containers.sh [stop]" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo ".ci/containers.sh: needs root (rootful podman, packages, a system service)" >&2; exit 1; }

MIRROR=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
MIRROR=${MIRROR:-$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)}
[ -n "$MIRROR" ] || { echo ".ci/containers.sh: no Debian mirror in apt's sources" >&2; exit 1; }
mkdir -p "$WORK"

if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
  say "installing podman, runc, debootstrap"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq podman runc debootstrap curl >/dev/null
fi

# crun refuses this kind of machine's hybrid cgroups: runc. No CAP_SYS_RESOURCE, and podman caps its own NPROC:
# explicit ulimits. netns = host: no netavark bridge, no NAT rules, no 10.88.x addresses.
mkdir -p /etc/containers
cat >/etc/containers/containers.conf <<EOF
# Written by pgproxy's .ci/containers.sh
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=32768:32768"]
netns = "host"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF

if ! podman image exists "$IMAGE"; then
  if ! podman image exists "$BASE"; then
    say "debootstrap bookworm (minbase) from $MIRROR"
    rm -rf "$WORK/rootfs"
    debootstrap --variant=minbase bookworm "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
      { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
    rm -rf "$WORK"/rootfs/var/cache/apt/archives/*.deb "$WORK"/rootfs/var/lib/apt/lists/*
    tar -C "$WORK/rootfs" -c . | podman import - "$BASE" >/dev/null
    rm -rf "$WORK/rootfs"
  fi
  say "building $IMAGE"
  mkdir -p "$WORK/context"
  # What pgproxy's container provider expects of any image: a `postgres` user, the server binaries on PATH, a
  # writable /var/run/postgresql. No cluster is created; the provider runs initdb itself.
  cat >"$WORK/context/Containerfile" <<EOF
FROM $BASE
RUN printf 'deb $MIRROR bookworm main\ndeb $MIRROR bookworm-updates main\ndeb ${MIRROR%/debian}/debian-security bookworm-security main\n' > /etc/apt/sources.list \\
 && mkdir -p /etc/postgresql-common \\
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf \\
 && apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \\
 && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/share/doc /usr/share/man \\
 && mkdir -p /var/run/postgresql && chown postgres:postgres /var/run/postgresql
ENV PATH=/usr/lib/postgresql/15/bin:\$PATH PGDATA=/var/lib/postgresql/data
USER postgres
EOF
  podman build --pull=never --network=host -t "$IMAGE" "$WORK/context" >"$WORK/build.log" 2>&1 ||
    { tail -30 "$WORK/build.log" >&2; exit 1; }
fi

if ! ping_engine; then
  say "starting the podman service on $SOCK"
  mkdir -p /run/podman
  nohup podman system service --time=0 "unix://$SOCK" >"$WORK/podman-service.log" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 100); do ping_engine && break; sleep 0.1; done
  ping_engine || { tail -20 "$WORK/podman-service.log" >&2; echo ".ci/containers.sh: the podman service does not answer" >&2; exit 1; }
fi

say "ready: $(podman image inspect --format '{{.Id}}' "$IMAGE" | cut -c1-12) $IMAGE"
cat <<EOF
export DOCKER_HOST=unix://$SOCK
export TESTCONTAINERS_RYUK_DISABLED=true
export TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1
export PGPROXY_IMAGE=$IMAGE
EOF
