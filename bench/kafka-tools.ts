/** What the benchmarks that run on the real broker share: Kafka's own tools, process RSS, percentiles. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { kafkaLibDir } from '../stack/install';
import { endpoints } from '../test/harness/kafka';

/** A process's resident memory in MB, or null once it is gone. */
export function rssMb(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

/** The p-th percentile of ascending `sorted` (nearest rank), NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted.length === 0
    ? NaN
    : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Kafka's own tools (org.apache.kafka.tools.<cls>) from the jars the stack downloaded. */
export function kafkaTool(cls: string, args: string[]): string {
  const cp = join(kafkaLibDir(endpoints.kafkaVersion), '*');
  return execFileSync('java', ['-Xmx512m', '-cp', cp, `org.apache.kafka.tools.${cls}`, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Kafka's ConsumerPerformance reading `records` records of `topic`: its records/s. */
export function consumerPerformance(
  topic: string,
  records: number,
  group: string,
  timeoutMs: number,
): number {
  const out = kafkaTool('ConsumerPerformance', [
    '--bootstrap-server',
    endpoints.kafkaBrokers[0]!,
    '--topic',
    topic,
    '--messages',
    String(records),
    '--group',
    group,
    '--timeout',
    String(timeoutMs),
  ]);
  // header: start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, ...
  const row = out
    .trim()
    .split('\n')
    .at(-1)!
    .split(',')
    .map((s) => s.trim());
  return Number(row[5]);
}
