#!/usr/bin/env bash
# Builds the producer examples (examples/: Python, Go, Java) that test/integration/examples.test.ts
# runs against the local stack, each only when its sources changed since it was built, into
# .holdback/cache/examples/ (git-ignored):
#   python/                          a venv with examples/python/requirements.txt (pip)
#   go/holdback-example              go build of examples/go (modules in .holdback/cache/go)
#   java/holdback-example.jar        mvn package of examples/java (one jar with its dependencies)
# Each has a stamp beside it: a hash of its sources, which the test checks too.
# Sourced by scripts/test.sh; also runs alone:
#   bash scripts/examples-setup.sh
if ! declare -F say >/dev/null; then
  set -euo pipefail
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  ROOT=$(pwd)
  say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
fi
if ! declare -F ensure_debian >/dev/null; then
  ensure_debian() { # binary package (as scripts/setup.sh)
    command -v "$1" >/dev/null 2>&1 && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
    say "installing Debian package $2 (for $1)"
    if [ -z "${APT_UPDATED:-}" ]; then $sudo apt-get update -q >/dev/null; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$2" >/dev/null
  }
fi

EXAMPLES_CACHE="$ROOT/.holdback/cache/examples"
mkdir -p "$EXAMPLES_CACHE"

# The sources' hash: sha256 of the `sha256sum` lines of every file under the given paths, in
# byte order (test/integration/examples.test.ts computes the same to refuse a stale build).
examples_hash() { (cd "$ROOT" && find "$@" -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16); }
# Whether the stamp file $1 holds hash $2.
examples_current() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

# Python: confluent-kafka (its wheel carries librdkafka) and the serializer's packages.
examples_venv="$EXAMPLES_CACHE/python"
examples_h=$(examples_hash examples/python/requirements.txt)
if ! examples_current "$examples_venv/.holdback-stamp" "$examples_h"; then
  say "installing the Python example's packages: a venv in .holdback/cache/examples/python with confluent-kafka 2.16.1 and its Avro/registry extras (pip, about 30 s)"
  t0=$(date +%s)
  rm -rf "$examples_venv"
  python3 -m venv "$examples_venv" || {
    echo "python3 -m venv failed: the Python example needs Python 3.9+ with venv (Debian: python3-venv)" >&2
    exit 1
  }
  "$examples_venv/bin/pip" install --quiet --disable-pip-version-check -r examples/python/requirements.txt
  echo "$examples_h" >"$examples_venv/.holdback-stamp"
  say "Python example ready in $(($(date +%s) - t0))s"
else
  say "the Python example's packages are installed"
fi

# Go: franz-go and hamba/avro, in the module cache Toxiproxy's build uses.
examples_gobin="$EXAMPLES_CACHE/go/holdback-example"
examples_h=$(examples_hash examples/go)
if ! examples_current "$examples_gobin.stamp" "$examples_h"; then
  command -v go >/dev/null 2>&1 || ensure_debian go golang-go
  say "building the Go example: go build of examples/go (franz-go 1.22.3, hamba/avro 2.31.0; the first build downloads and compiles them, about 2 minutes; -v lists each package as it compiles)"
  t0=$(date +%s)
  (
    cd examples/go
    GOPATH="$ROOT/.holdback/cache/go" GOCACHE="$ROOT/.holdback/cache/go/build-cache" \
      GOFLAGS="-modcacherw -buildvcs=false" go build -v -o "$examples_gobin" .
  )
  echo "$examples_h" >"$examples_gobin.stamp"
  say "Go example built in $(($(date +%s) - t0))s"
else
  say "the Go example is built"
fi

# Java: kafka-clients and Avro, from Maven Central into the usual local repository (~/.m2).
examples_jar="$EXAMPLES_CACHE/java/holdback-example.jar"
examples_h=$(examples_hash examples/java/pom.xml examples/java/src)
if ! examples_current "$examples_jar.stamp" "$examples_h"; then
  command -v java >/dev/null 2>&1 || ensure_debian java default-jdk-headless
  command -v mvn >/dev/null 2>&1 || ensure_debian mvn maven
  say "building the Java example: mvn package of examples/java (kafka-clients 4.4.0, Avro 1.12.2; the first build downloads them, about 30 s)"
  t0=$(date +%s)
  # Maven 3.8's -q still prints colour codes: its output goes to a log, shown when it fails.
  mvn -q -B -f examples/java/pom.xml package -Dexample.build.directory="$EXAMPLES_CACHE/java" \
    >"$EXAMPLES_CACHE/java-build.log" 2>&1 || {
    cat "$EXAMPLES_CACHE/java-build.log" >&2
    exit 1
  }
  echo "$examples_h" >"$examples_jar.stamp"
  say "Java example built in $(($(date +%s) - t0))s"
else
  say "the Java example is built"
fi
