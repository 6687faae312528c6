#!/usr/bin/env bash
# README command one: sets up and runs the demo.
#   npm run demo
# Until the marketplace simulator lands (issue 9), the demo brings up the real local stack,
# registers nothing yet, and shows what runs where. It leaves the stack running.
source "$(dirname "$0")/setup.sh"
say "starting the local stack (holdback stack up)"
holdback stack up
cat <<MSG

The stack is running. Look around:
  Prometheus    $(node -p "require('./dist/connectors/endpoints').loadEndpoints().prometheusUrl")
  Alertmanager  $(node -p "require('./dist/connectors/endpoints').loadEndpoints().alertmanagerUrl")
  ClickHouse    clickhouse-client --port 19000   (or curl 'http://127.0.0.1:18123/?query=SELECT%20version()')
  Kafka topics  node bin/holdback stack status
Stop it with: node bin/holdback stack down
MSG
