/** The machine a benchmark ran on, recorded with its figures in bench/results/. */
import { cpus, platform, release } from 'node:os';
import type { Endpoints } from '../connectors/endpoints';

export function machine(): { cpu: string | undefined; cores: number; node: string; os: string } {
  return {
    cpu: cpus()[0]?.model.trim(),
    cores: cpus().length,
    node: process.version,
    os: `${platform()} ${release()}`,
  };
}

/** The Kafka a benchmark ran against, for its saved result: release, nodes, partitions. */
export function kafkaSetup(e: Endpoints): { version: string; nodes: number; partitions: number } {
  return { version: e.kafkaVersion, nodes: e.kafkaNodes.length, partitions: e.partitions };
}
