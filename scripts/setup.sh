# Sourced by the README's commands (scripts/test.sh, scripts/demo.sh): installs the npm packages
# and builds the CLI, each only when needed, saying what it does. The stack's own servers are
# installed by `holdback stack up` itself.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "Holdback needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))." >&2
  exit 1
fi

# npm packages: install when package.json or the lock file changed since the last install.
# `npm install`, not `npm ci`: npm 11 leaves other platforms' optional packages (@swc/core-*)
# out of the lock file and `npm ci` then refuses it as out of sync (npm/cli#4828).
deps_hash() { cat package.json package-lock.json | sha256sum | cut -c1-16; }
if [ ! -f "node_modules/.holdback-deps-$(deps_hash)" ]; then
  say "installing npm packages (npm install)"
  npm install --no-audit --no-fund --loglevel=error
  rm -f node_modules/.holdback-deps-*
  touch "node_modules/.holdback-deps-$(deps_hash)"
else
  say "npm packages are current"
fi

say "compiling TypeScript (tsc)"
npx tsc -p tsconfig.build.json

# Debian packages the tests use besides the stack's servers (the stack installs those).
ensure_debian() { # binary package
  command -v "$1" >/dev/null 2>&1 && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  say "installing Debian package $2 (for $1)"
  if [ -z "${APT_UPDATED:-}" ]; then $sudo apt-get update -q >/dev/null; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$2" >/dev/null
}

holdback() { node "$ROOT/bin/holdback" "$@"; }
