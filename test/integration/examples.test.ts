/**
 * The producer examples (examples/) in the platforms' own clients, against the real stack and a
 * real `holdback run repayment`: Python (confluent-kafka), Go (franz-go) and Java (kafka-clients)
 * each produce a loan and three payouts in the Confluent wire format, keyed and partitioned as
 * Holdback's producers are, and read back the deductions, which each checks itself. This test
 * checks their exit code and what they report, reads the deductions itself, and checks that each
 * client put the merchant in the partition Java's murmur2 gives (the run id is chosen so that
 * librdkafka's default partitioner would put it elsewhere).
 *
 * The examples are built by scripts/examples-setup.sh (scripts/test.sh runs it); a missing or
 * stale build fails here with that command, never skips.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { keyPartitioner } from '../../connectors/kafka-send';
import { changelogTopic } from '../../runtime/kafka-runtime';
import type { Deduction } from '../../schemas/generated/types';
import { TOPICS } from '../../schemas/topics';
import { REPO_ROOT } from '../../stack/paths';
import { createTopics, deleteTopics, endpoints, readAll, registeredCodec } from '../harness/kafka';
import { healthOf, logTail, spawnProcessor, terminate, type ProcessorProcess } from '../harness/processes';

jest.setTimeout(120_000);

const SETUP = '`bash scripts/examples-setup.sh`';
const CACHE = join(REPO_ROOT, '.holdback', 'cache', 'examples');
/** What each example is given to do it all in (the example's own --timeout), and the test's limit on it. */
const EXAMPLE_TIMEOUT_S = 60;

interface Example {
  language: string;
  /** The built program (venv's python, binary or jar) that the setup script makes. */
  built: string;
  command: string;
  args: string[];
  /** The setup script hashes these (relative to the repository) into `stamp` when it builds. */
  sources: string[];
  stamp: string;
}

const EXAMPLES: Example[] = [
  {
    language: 'Python (confluent-kafka)',
    built: join(CACHE, 'python', 'bin', 'python'),
    command: join(CACHE, 'python', 'bin', 'python'),
    args: [join(REPO_ROOT, 'examples', 'python', 'produce_and_read.py')],
    sources: ['examples/python/requirements.txt'],
    stamp: join(CACHE, 'python', '.holdback-stamp'),
  },
  {
    language: 'Go (franz-go)',
    built: join(CACHE, 'go', 'holdback-example'),
    command: join(CACHE, 'go', 'holdback-example'),
    args: [],
    sources: ['examples/go'],
    stamp: join(CACHE, 'go', 'holdback-example.stamp'),
  },
  {
    language: 'Java (kafka-clients)',
    built: join(CACHE, 'java', 'holdback-example.jar'),
    command: 'java',
    args: ['-jar', join(CACHE, 'java', 'holdback-example.jar')],
    sources: ['examples/java/pom.xml', 'examples/java/src'],
    stamp: join(CACHE, 'java', 'holdback-example.jar.stamp'),
  },
];

/** scripts/examples-setup.sh's examples_hash: `find PATHS -type f | LC_ALL=C sort | xargs sha256sum | sha256sum`. */
function sourcesHash(paths: string[]): string {
  const files: string[] = [];
  const walk = (p: string): void => {
    if (statSync(join(REPO_ROOT, p)).isDirectory()) {
      for (const name of readdirSync(join(REPO_ROOT, p))) walk(`${p}/${name}`);
    } else files.push(p);
  };
  paths.forEach(walk);
  files.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const lines = files
    .map(
      (f) =>
        `${createHash('sha256')
          .update(readFileSync(join(REPO_ROOT, f)))
          .digest('hex')}  ${f}\n`,
    )
    .join('');
  return createHash('sha256').update(lines).digest('hex').slice(0, 16);
}

/** Why the example cannot run as built (missing, or built from other sources), with the command that builds it. */
function notBuilt(e: Example): string | undefined {
  if (!existsSync(e.built) || !existsSync(e.stamp)) {
    return `the ${e.language} example is not built (${e.built} is missing): run ${SETUP}`;
  }
  if (readFileSync(e.stamp, 'utf8').trim() !== sourcesHash(e.sources)) {
    return `${e.sources.join(', ')} changed since the ${e.language} example was built: run ${SETUP}`;
  }
  return undefined;
}

interface Run {
  code: number | null;
  output: string;
}

function runExample(e: Example, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(e.command, [...e.args, ...args], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    // The example stops itself after its --timeout; this is in case it hangs.
    const timer = setTimeout(() => child.kill('SIGKILL'), (EXAMPLE_TIMEOUT_S + 20) * 1000);
    child.on('error', (err) => {
      clearTimeout(timer);
      const hint =
        e.command === 'java' ? `; the Java example needs a JDK 17+ on PATH (${SETUP} installs one)` : '';
      resolve({ code: null, output: `${output}cannot start ${e.command}: ${err.message}${hint}` });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

interface Result {
  merchant_id: string;
  partition: number;
  deductions: Array<{
    payout_id: string;
    amount_minor: number;
    balance_after_minor: number;
    partition: number;
  }>;
}

const run = `ex-${Date.now().toString(36)}`;
const app = `${run}-repayment`;
const prefix = `${run}.`;
const partitionOf = keyPartitioner(endpoints.partitions);

/**
 * A run id for the example whose merchant id (`<run id>-merchant`) Java's murmur2 puts in another
 * partition than librdkafka's default (CRC32): a client left on its default would be caught.
 */
function runIdFor(language: string): string {
  const stem = `${run}-${language.split(' ')[0]!.toLowerCase()}`;
  for (let n = 0; n < 100; n++) {
    const key = `${stem}${n}-merchant`;
    if (endpoints.partitions === 1 || partitionOf('', key) !== crc32(key) % endpoints.partitions)
      return `${stem}${n}`;
  }
  return stem;
}

let processor: ProcessorProcess;

beforeAll(async () => {
  await registeredCodec(); // the contract's subjects, which the examples use
  await createTopics(prefix);
  processor = spawnProcessor(app, 'repayment', [
    `--topic-prefix=${prefix}`,
    `--application-id=${app}`,
    '--transport=rdkafka',
  ]);
});

afterAll(async () => {
  if (processor) await terminate(processor);
  await deleteTopics(prefix, [changelogTopic(app)]);
});

describe.each(EXAMPLES)('the $language producer example', (example) => {
  test('produces a loan and payouts that Holdback withholds from, and reads the deductions back', async () => {
    const problem = notBuilt(example);
    if (problem) throw new Error(problem);

    const runId = runIdFor(example.language);
    const merchant = `${runId}-merchant`;
    const started = Date.now();
    const { code, output } = await runExample(example, [
      '--bootstrap-servers',
      endpoints.kafkaBrokers.join(','),
      '--registry-url',
      endpoints.registryUrl,
      '--topic-prefix',
      prefix,
      '--run-id',
      runId,
      '--timeout',
      String(EXAMPLE_TIMEOUT_S),
    ]);
    if (code !== 0) {
      throw new Error(
        `the ${example.language} example exited ${code} after ${Date.now() - started} ms:\n${output}\n` +
          `processor log:\n${logTail(processor)}\nprocessor health: ${await healthOf(processor)}`,
      );
    }

    // What the example reports it read and checked.
    const line = output.split('\n').find((l) => l.startsWith('RESULT '));
    if (!line) throw new Error(`no RESULT line in the example's output:\n${output}`);
    const result = JSON.parse(line.slice('RESULT '.length)) as Result;
    const expected = [
      [`${runId}-payout-1`, 25_000, 85_000],
      [`${runId}-payout-2`, 12_000, 73_000],
      [`${runId}-payout-3`, 9_999, 63_001],
    ];
    expect(result.merchant_id).toBe(merchant);
    expect(result.deductions.map((d) => [d.payout_id, d.amount_minor, d.balance_after_minor])).toEqual(
      expected,
    );
    // The client's partitioner is Java's murmur2, and Holdback wrote the deductions to that partition.
    expect(result.partition).toBe(partitionOf('', merchant));
    expect(result.deductions.map((d) => d.partition)).toEqual([
      result.partition,
      result.partition,
      result.partition,
    ]);

    // And what is on the topic, read here.
    const codec = await registeredCodec();
    const deductions = ((await readAll(prefix, TOPICS.deductions, codec)) as Deduction[]).filter(
      (d) => d.merchant_id === merchant,
    );
    expect(
      deductions.map((d) => [d.payout_id, d.amount_minor, d.balance_after_minor, d.type, d.loan_id]),
    ).toEqual(expected.map((e) => [...e, 'WITHHOLD', `${runId}-loan`]));
    expect(await readAll(prefix, TOPICS.dlq, codec)).toEqual([]);
  });
});
