#!/usr/bin/env bash
# README command one: sets up what is missing and runs the demo.
#   npm run demo                  (or: npm run demo -- --duration=120 --rate=8000)
# Installs npm packages and builds (setup.sh), brings the real local stack up (installing its
# servers on first use), then streams simulated marketplace traffic through the whole pipeline
# and prints a summary (cli/commands/demo.ts). The stack keeps running afterwards.
source "$(dirname "$0")/setup.sh"
say "starting the local stack (holdback stack up; the first run downloads Kafka and the registry)"
holdback stack up
say "running the demo (holdback demo $*)"
holdback demo "$@"
