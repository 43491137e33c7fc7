#!/usr/bin/env bash
# The classifier's differential test over PostgreSQL's own regression suite (src/test/regress/sql of the PostgreSQL
# release whose server binaries are installed), run by CI after `npm test`.
#
# The suite comes from Debian's source package of that release (`apt-get source postgresql-NN`: the upstream release
# tarball), unpacked under .pgproxy/pg-regress/, split into statements by scripts/pg-regress-corpus.mjs, and checked
# by test/corpus/pg-regress.test.ts (vitest project "corpus"). Needs apt with deb-src access to Debian's archive
# (added here when missing) and dpkg-dev; on other systems give the sql directory of a PostgreSQL source tree:
#
#   bash scripts/pg-regress.sh                         # Debian: fetch the source package of the installed major
#   bash scripts/pg-regress.sh /path/to/postgresql/src/test/regress/sql REL_15_18
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=.pgproxy/pg-regress
mkdir -p "$WORK"
if [ $# -ge 2 ]; then
  SQL_DIR=$1
  TAG=$2
else
  BIN=$(compgen -G '/usr/lib/postgresql/*/bin/postgres' | sort -V | tail -n 1)
  MAJOR=$(basename "$(dirname "$(dirname "$BIN")")")
  if ! compgen -G "$WORK/postgresql-$MAJOR*.orig.tar.*" >/dev/null; then
    # The source of exactly the installed package, from Debian's main archive.
    VERSION=$(dpkg-query -W -f='${Version}' "postgresql-$MAJOR")
    if ! apt-get source --print-uris "postgresql-$MAJOR=$VERSION" >/dev/null 2>&1; then
      src=/etc/apt/sources.list.d/pgproxy-deb-src.sources
      awk 'BEGIN{RS=""; ORS="\n\n"} /URIs: http[^ ]*\/debian\n/ && !/security/ {sub(/Types: deb/, "Types: deb-src"); print}' /etc/apt/sources.list.d/debian.sources > "$src"
      apt-get update -qq
    fi
    command -v dpkg-source >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dpkg-dev >/dev/null
    (cd "$WORK" && apt-get source --download-only "postgresql-$MAJOR=$VERSION" >/dev/null 2>&1)
  fi
  TARBALL=$(compgen -G "$WORK/postgresql-$MAJOR*.orig.tar.*" | head -n 1)
  VERSION=$(basename "$TARBALL" | sed -E 's/^postgresql-[0-9]+_([0-9.]+)\.orig.*/\1/')
  TAG="REL_${VERSION//./_}"
  rm -rf "$WORK/src"
  mkdir -p "$WORK/src"
  tar -xf "$TARBALL" -C "$WORK/src" --strip-components=1 --wildcards '*/src/test/regress/sql/*'
  SQL_DIR=$WORK/src/src/test/regress/sql
fi
node scripts/pg-regress-corpus.mjs "$SQL_DIR" "$TAG" "$WORK/statements.json.gz"
PGPROXY_REGRESS_CORPUS=$WORK/statements.json.gz npx vitest run --project corpus
