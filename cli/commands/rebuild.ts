/**
 * `holdback rebuild <processor> --from=<application id> --application-id=<new id> [run options]`:
 * rebuilds a processor's state from its inputs into a fresh application id, up to exactly where
 * the old group committed, writes the outputs of that to shadow topics and compares them with
 * what the old one published (runtime/rebuild.ts; docs/runbooks/startup/ChangelogLost.md).
 * Exits 0 when they match (the new id can then be started in the old one's place), 1 when they
 * differ or the rebuild failed, 2 on a usage or configuration error.
 */
import { writeFileSync } from 'node:fs';
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import { z } from 'zod';
import { Codec } from '../../connectors/codec';
import { loadConnections, registryOptions } from '../../connectors/connections';
import { checkKafka, kafkajsConfig } from '../../connectors/kafka-client';
import { OptionError } from '../../connectors/flags';
import { clusterReplication, createTopicsReady } from '../../connectors/kafka-admin';
import { readToEnd, whileRetriable } from '../../connectors/kafka-read';
import { SchemaRegistryClient } from '../../connectors/registry';
import { PROCESSORS } from '../../processors';
import { checkRunOptions, RUN_OPTION_HELP, RUN_OPTIONS } from '../../runtime/config';
import {
  asPublishedBy,
  awaitSettled,
  boundsMoved,
  compareRecords,
  ignoredFields,
  rebuildBounds,
  RebuildError,
  type RebuildTopics,
  type TopicComparison,
} from '../../runtime/rebuild';
import { TOPICS, type TopicName } from '../../schemas/topics';
import { commandModule, HoldbackCommand } from '../program';
import { processorOrConfigError, runOptionSpec, serve } from './run';

const ID = z.string().regex(/^[A-Za-z0-9._-]{1,100}$/);
const REBUILD_OPTIONS = RUN_OPTIONS.extend({
  from: ID,
  applicationId: ID,
  outputPrefix: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,100}$/)
    .optional(),
  report: z.string().min(1).optional(),
}).strict();

/** How often the rebuild checks whether every partition reached its bound, and logs progress. */
const POLL_MS = 200;
const PROGRESS_EVERY_MS = 5000;

const REBUILD_HELP = {
  ...RUN_OPTION_HELP,
  from: 'the application id whose state is rebuilt (its changelog lost)',
  applicationId: 'the fresh application id to rebuild into',
  outputPrefix: 'prefix of the shadow output topics (default <topic prefix><application id>.)',
  report: 'also write the comparison as JSON to this file',
};
const REBUILD_ONLY = new Set(['from', 'applicationId', 'outputPrefix', 'report']);

function create(): HoldbackCommand {
  const rebuild = new HoldbackCommand('rebuild').description(
    "Rebuilds a processor's lost state from its inputs and checks it against what was published. " +
      'Exit 0: the rebuilt outputs match; 1: they differ, or the rebuild failed; 2: a usage or ' +
      'configuration error.',
  );
  rebuild.operandNoun = 'processor';
  for (const name of Object.keys(PROCESSORS)) {
    const p = rebuild
      .command(name)
      .summary(`rebuild the ${name} processor's state into a fresh application id`)
      .description(
        `Rebuilds the state of the ${name} processor's application --from (its changelog lost: ` +
          'docs/runbooks/startup/ChangelogLost.md) by processing the inputs from their earliest offsets ' +
          'up to where that group committed, into the fresh --application-id. Its outputs go to shadow ' +
          'topics (<topic prefix><application id>.<topic>) and are compared with what --from published. ' +
          "When they match, stop --from's instances for good and start the processor with the new " +
          '--application-id: it goes on where the old one stopped, publishing nothing twice. ' +
          'The run options must be those the processor ran with.',
      );
    const spec = runOptionSpec(name);
    const options = p.schemaOptions(REBUILD_OPTIONS, {
      ...spec,
      help: REBUILD_HELP,
      placeholder: { ...spec.placeholder, from: 'id', report: 'file' },
    });
    for (const o of p.options)
      o.helpGroup(
        REBUILD_ONLY.has(o.attributeName()) ? 'Rebuild options:' : 'Run options (as the processor ran):',
      );
    p.runs((cmd) => rebuildProcessor(name, checkRunOptions(options(cmd), name)));
  }
  return rebuild;
}

export const command = commandModule(create);

async function rebuildProcessor(name: string, options: z.infer<typeof REBUILD_OPTIONS>): Promise<number> {
  const processor = processorOrConfigError(PROCESSORS[name]!, options);
  if (options.guarantee !== 'exactly_once') {
    throw new OptionError(
      '--guarantee=exactly_once only: under at_least_once the published outputs ' +
        'are not exactly those of the committed inputs, so there is nothing exact to compare',
    );
  }
  const topics: RebuildTopics = {
    inputs: processor.inputs,
    outputs: [...processor.outputs, TOPICS.dlq],
    topicPrefix: options.topicPrefix,
    outputPrefix: options.outputPrefix ?? `${options.topicPrefix}${options.applicationId}.`,
    from: options.from,
    applicationId: options.applicationId,
  };
  const connections = loadConnections();
  await checkKafka(connections.kafka, options.applicationId);
  const kafkaConfig = kafkajsConfig(connections.kafka, options.applicationId);
  const kafka = new Kafka({ ...kafkaConfig, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const bounds = await rebuildBounds(admin, topics);
    const records = [...bounds.values()].reduce((a, b) => a + b, 0);
    const partitions = await partitionCount(admin, options.topicPrefix + processor.inputs[0]!);
    const replication = await clusterReplication(admin);
    await createTopicsReady(
      admin,
      topics.outputs.map((o) => ({
        topic: topics.outputPrefix + o,
        numPartitions: partitions,
        replicationFactor: replication.replicationFactor,
        configEntries: [{ name: 'min.insync.replicas', value: String(replication.minInsyncReplicas) }],
      })),
    );
    const t0 = Date.now();
    const { runtime, server, log, brokerClock } = await serve(processor, options, {
      outputPrefix: topics.outputPrefix,
      stopAt: bounds,
    });
    log.info('rebuilding', {
      from: topics.from,
      into: topics.applicationId,
      inputOffsets: records,
      outputPrefix: topics.outputPrefix,
    });
    let stopped = false;
    try {
      await brokerClock?.start();
      await runtime.start();
      let loggedAt = Date.now();
      while (!runtime.reachedStopBounds()) {
        const stopped = runtime.stoppedPartitions();
        if (stopped.length > 0) {
          throw new RebuildError(
            `partition ${stopped[0]!.partition} stopped on a broken invariant (${stopped[0]!.reason}): ` +
              'the rebuild cannot complete (docs/runbooks/HoldbackPartitionStopped.md)',
          );
        }
        if (Date.now() - loggedAt >= PROGRESS_EVERY_MS) {
          loggedAt = Date.now();
          log.info('rebuild in progress', { remaining: runtime.totalLag() });
        }
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
      stopped = true;
      if (!(await runtime.stop())) throw new RebuildError('the final commit of the rebuild failed');
    } finally {
      if (!stopped) await runtime.stop().catch(() => undefined);
      await brokerClock?.stop();
      await server.close();
    }
    const seconds = (Date.now() - t0) / 1000;
    const moved = await boundsMoved(admin, topics, bounds);
    if (moved.length > 0) {
      throw new RebuildError(
        `group ${topics.from} committed further while the rebuild ran (${moved.slice(0, 3).join('; ')}): ` +
          'stop its instances, delete the shadow topics and the new group, and rebuild again',
      );
    }
    // The last transaction's markers may still be on their way: read only once they are written.
    await awaitSettled(
      admin,
      kafkaConfig,
      topics.outputs.flatMap((o) => [options.topicPrefix + o, topics.outputPrefix + o]),
    );
    const registry = new SchemaRegistryClient(registryOptions(connections.registry));
    const codec = new Codec({ source: registry, schemaIds: await registry.lookupAll() });
    const comparisons: TopicComparison[] = [];
    for (const topic of topics.outputs) {
      const published = await readDecoded(kafka, codec, topic as TopicName, options.topicPrefix + topic);
      const rebuilt = await readDecoded(kafka, codec, topic as TopicName, topics.outputPrefix + topic);
      comparisons.push(
        compareRecords(
          topic,
          asPublishedBy(topic, published, processor.name),
          rebuilt,
          ignoredFields(topic, options.clock),
          topic === TOPICS.dlq ? 'contained' : 'equal',
        ),
      );
    }
    const matches = comparisons.every((c) => c.matches);
    const report = {
      processor: processor.name,
      from: topics.from,
      applicationId: topics.applicationId,
      outputPrefix: topics.outputPrefix,
      inputOffsets: records,
      seconds,
      matches,
      topics: comparisons,
    };
    if (options.report) writeFileSync(options.report, `${JSON.stringify(report, null, 2)}\n`);
    printReport(report, options.topicPrefix);
    return matches ? 0 : 1;
  } catch (e) {
    if (e instanceof RebuildError) {
      console.error(`holdback rebuild ${name}: ${e.message}`);
      return 1;
    }
    throw e;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function partitionCount(admin: ReturnType<Kafka['admin']>, topic: string): Promise<number> {
  const meta = await whileRetriable(() => admin.fetchTopicMetadata({ topics: [topic] }));
  const n = meta.topics[0]?.partitions.length ?? 0;
  if (n === 0) throw new RebuildError(`topic ${topic} does not exist (check --topic-prefix)`);
  return n;
}

/** Every committed record of `physical`, decoded as contract topic `topic`. */
async function readDecoded(
  kafka: Kafka,
  codec: Codec,
  topic: TopicName,
  physical: string,
): Promise<unknown[]> {
  const raw: KafkaMessage[] = [];
  await readToEnd(kafka, {
    topic: physical,
    groupId: `holdback-rebuild-read-${process.pid}-${Date.now()}`,
    onMessage: (_p, m) => raw.push(m),
  });
  const out: unknown[] = [];
  for (const m of raw) {
    const r = await codec.decode(topic, m.key, m.value, Date.now());
    if (!r.ok) throw new RebuildError(`${physical}@${m.offset} does not decode: ${r.reasonCode} ${r.detail}`);
    out.push(r.value);
  }
  return out;
}

function printReport(
  r: {
    from: string;
    applicationId: string;
    inputOffsets: number;
    seconds: number;
    matches: boolean;
    topics: TopicComparison[];
  },
  topicPrefix: string,
): void {
  console.log(
    `rebuilt ${r.from} into ${r.applicationId}: ${r.inputOffsets} input offsets in ${r.seconds.toFixed(1)} s`,
  );
  for (const c of r.topics) {
    const verdict = c.matches
      ? c.mode === 'contained'
        ? 'every rebuilt record was published'
        : 'identical'
      : `DIFFERS: ${c.onlyPublishedCount} only published, ${c.onlyRebuiltCount} only rebuilt`;
    console.log(
      `  ${(topicPrefix + c.topic).padEnd(40)} published ${String(c.published).padStart(8)}  rebuilt ${String(c.rebuilt).padStart(8)}  ${verdict}`,
    );
    for (const x of c.onlyPublished) console.log(`      only published: ${x}`);
    for (const x of c.onlyRebuilt) console.log(`      only rebuilt:   ${x}`);
  }
  if (r.matches) {
    console.log(
      `the rebuilt state matches what ${r.from} published. To adopt it: stop ${r.from}'s instances, ` +
        `start the processor with --application-id=${r.applicationId}, then delete the shadow topics.`,
    );
  } else {
    console.log(`the rebuilt outputs differ from what ${r.from} published: do not adopt ${r.applicationId}.`);
  }
}
