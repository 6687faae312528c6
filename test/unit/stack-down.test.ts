/** With the stack down, the integration suite refuses to run and says how to start the stack. */
import globalSetup from '../integration/global-setup';
import clusterSetup from '../cluster/global-setup';
import { CLOSED_PORTS } from '../harness/cli';

test('integration set-up fails with the command that starts the stack when services are unreachable', async () => {
  const saved = { ...process.env };
  // Ports where nothing listens: every check fails quickly with "connection refused".
  Object.assign(process.env, CLOSED_PORTS);
  try {
    await expect(globalSetup()).rejects.toThrow(
      /Kafka is not answering at 127\.0\.0\.1:1031[\s\S]*holdback stack up/,
    );
  } finally {
    process.env = saved;
  }
}, 30_000);

test('the cluster fault tests refuse a single-node Kafka and say how to start the cluster', async () => {
  const saved = { ...process.env };
  Object.assign(process.env, {
    HOLDBACK_KAFKA_PORT: '1031',
    HOLDBACK_KAFKA_CONTROLLER_PORT: '1032',
    HOLDBACK_KAFKA_BROKERS: '1',
  });
  try {
    await expect(clusterSetup()).rejects.toThrow(
      /three-node Kafka[\s\S]*HOLDBACK_KAFKA_BROKERS is 1[\s\S]*test\/cluster\/cluster\.env/,
    );
  } finally {
    process.env = saved;
  }
}, 30_000);
