/**
 * The cluster fault tests need the three-node Kafka of test/cluster/cluster.env and the rest of
 * the local stack. When either is not there they fail here, once, saying how to start it.
 */
import { loadEndpoints } from '../../connectors/endpoints';
import { checkServices } from '../integration/services';

export default async function globalSetup(): Promise<void> {
  const e = loadEndpoints();
  const down = await checkServices();
  if (e.kafkaNodes.length !== 3 || down.length > 0) {
    throw new Error(
      `the cluster fault tests need a three-node Kafka and the local stack, but ${
        e.kafkaNodes.length !== 3 ? `HOLDBACK_KAFKA_BROKERS is ${e.kafkaNodes.length}` : down.join('; ')
      }.\nStart them with \`node bin/holdback stack up\`, then ` +
        '`set -a; . test/cluster/cluster.env; set +a; node bin/holdback stack up kafka kafka-2 kafka-3`, ' +
        'and run the tests in that shell (or run `npm test`, which does all of it).',
    );
  }
}
