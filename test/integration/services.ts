/** Reachability of each real service, by a protocol check (not just an open port). */
import { Kafka, logLevel } from 'kafkajs';
import { loadEndpoints } from '../../connectors/endpoints';

async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
    return res.ok;
  } catch {
    return false;
  }
}

async function kafkaOk(brokers: string[]): Promise<boolean> {
  const admin = new Kafka({
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2000,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    await admin.describeCluster();
    return true;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Returns a description of every service that is down; empty when all are up. */
export async function checkServices(): Promise<string[]> {
  const e = loadEndpoints();
  const checks: Array<[string, Promise<boolean>]> = [
    [`Kafka is not answering at ${e.kafkaBrokers.join(',')}`, kafkaOk(e.kafkaBrokers)],
    [`the schema registry is not answering at ${e.registryUrl}`, httpOk(`${e.registryUrl}/subjects`)],
    [`ClickHouse is not answering at ${e.clickhouseUrl}`, httpOk(`${e.clickhouseUrl}/ping`)],
    [`Prometheus is not answering at ${e.prometheusUrl}`, httpOk(`${e.prometheusUrl}/-/ready`)],
    [`Alertmanager is not answering at ${e.alertmanagerUrl}`, httpOk(`${e.alertmanagerUrl}/-/ready`)],
  ];
  const results = await Promise.all(checks.map(([, p]) => p));
  return checks.filter((_, i) => !results[i]).map(([msg]) => msg);
}
