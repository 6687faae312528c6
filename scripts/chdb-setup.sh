#!/usr/bin/env bash
# Installs the current ClickHouse engines in process (chDB from PyPI) for the SQL checks of
# test/unit/clickhouse/current-engines.test.ts: the local stack's server is Debian's 18.16, the
# docker-compose image is 25.8, and users run newer. One venv per engine under
# .holdback/cache/chdb/<version>/, each rebuilt only when its pinned requirements change:
#   25.8  chdb 3.7.2                      (test/clickhouse/requirements-25.8.txt)
#   26.9  chdb 4.4.0 with chdb-core 26.9  (test/clickhouse/requirements-26.9.txt)
# Sourced by scripts/test.sh; also runs alone:
#   bash scripts/chdb-setup.sh
if ! declare -F say >/dev/null; then
  set -euo pipefail
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  ROOT=$(pwd)
  say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
fi

for chdb_version in 25.8 26.9; do
  chdb_req="$ROOT/test/clickhouse/requirements-$chdb_version.txt"
  chdb_venv="$ROOT/.holdback/cache/chdb/$chdb_version"
  chdb_hash=$(sha256sum "$chdb_req" | cut -c1-16)
  if [ -f "$chdb_venv/.holdback-stamp" ] && [ "$(cat "$chdb_venv/.holdback-stamp")" = "$chdb_hash" ]; then
    say "ClickHouse $chdb_version in process (chDB) is installed"
    continue
  fi
  say "installing ClickHouse $chdb_version in process for the SQL checks: a venv in .holdback/cache/chdb/$chdb_version with $(head -1 "$chdb_req" | tr -d '\n') (pip, a ~200 MB wheel, about 30 s)"
  t0=$(date +%s)
  rm -rf "$chdb_venv"
  mkdir -p "$(dirname "$chdb_venv")"
  python3 -m venv "$chdb_venv" || {
    echo "python3 -m venv failed: the ClickHouse SQL checks need Python 3.9+ with venv (Debian: python3-venv)" >&2
    exit 1
  }
  "$chdb_venv/bin/pip" install --quiet --disable-pip-version-check --progress-bar off -r "$chdb_req"
  echo "$chdb_hash" >"$chdb_venv/.holdback-stamp"
  say "ClickHouse $chdb_version in process ready in $(($(date +%s) - t0))s"
done
