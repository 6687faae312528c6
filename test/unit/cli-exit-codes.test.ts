/**
 * The compiled CLI's exit codes, the same for every command: 0 success, 1 a runtime failure (here:
 * the services unreachable on closed ports, or refusing), 2 a usage or configuration error, whose
 * message names the problem. And `holdback --version`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMMANDS } from '../../cli/main';
import { REPO_ROOT } from '../../stack/paths';
import { assertBuilt, cliEnv, holdback, pooled } from '../harness/cli';

jest.setTimeout(300_000);

const POLICY = join(REPO_ROOT, 'policies', 'default.json');

/** Per command: usage errors, each with what its message must say. */
const USAGE_ERRORS: Record<string, Array<[string[], RegExp]>> = {
  stack: [
    [['stack'], /Usage: holdback stack/],
    [['stack', 'upp'], /holdback stack: unknown subcommand 'upp'/],
    [['stack', 'up', '--brokers=9'], /holdback stack up: bad option --brokers=9: /],
    [['stack', 'up', '--brokers'], /option --brokers needs a value/],
    [['stack', 'up', 'kafak'], /unknown component 'kafak': one of kafka, /],
    [['stack', 'down', '--purge=yes'], /unknown option --purge/],
    [['stack', 'logs'], /holdback stack logs: missing argument <component>/],
    [['stack', 'logs', 'kafka', '-n', 'many'], /bad option --lines=many/],
  ],
  schemas: [
    [['schemas', 'register', 'now'], /holdback schemas register: unexpected argument 'now'/],
    [['schemas', 'verify'], /unknown subcommand 'verify'/],
  ],
  run: [
    [['run'], /Usage: holdback run/],
    [['run', 'repayments'], /holdback run: unknown processor 'repayments'/],
    [
      ['run', 'repayment', '--max-task-idle-ms=x'],
      /holdback run repayment: bad option --max-task-idle-ms=x: /,
    ],
    [['run', 'repayment', '--max-task-idle-ms', 'x'], /bad option --max-task-idle-ms=x: /],
    [['run', 'repayment', '--foo'], /holdback run repayment: unknown option --foo/],
    [['run', 'repayment', '--commit-interval-ms'], /option --commit-interval-ms needs a value/],
    [['run', 'repayment', '--clock=wall', '--clock=stream'], /option --clock given twice/],
    [['run', 'repayment', '--policy', POLICY], /--policy is an option of eligibility, not of repayment/],
    [['run', 'eligibility', '--policy=/nonexistent.json'], /\/nonexistent\.json: cannot read the policy/],
    [
      ['run', 'repayment', '--transport=kafkajs', '--compression=gzip'],
      /--compression=gzip needs --transport=rdkafka/,
    ],
  ],
  rebuild: [
    [['rebuild', 'repayment', '--application-id=new'], /holdback rebuild repayment: missing option --from/],
    [['rebuild', 'nope'], /unknown processor 'nope'/],
    [
      ['rebuild', 'repayment', '--from=a', '--application-id=b', '--guarantee=at_least_once'],
      /exactly_once only/,
    ],
  ],
  dlq: [
    [
      ['dlq', 'replay'],
      /holdback dlq replay: choose what to replay with --reason, --source-topic or --offset/,
    ],
    [['dlq', 'inspect', '--limit', 'lots'], /holdback dlq inspect: bad option --limit=lots/],
    [['dlq', 'inspect', '--offset=1'], /bad option --offset=1: expected partition:offset/],
    [['dlq', 'skip', '--partition=0'], /holdback dlq skip: missing option --topic/],
    [
      ['dlq', 'skip', '--processor-url', 'nowhere', '--partition=0', '--topic=t', '--offset=1', '--note=why'],
      /bad option --processor-url=nowhere/,
    ],
  ],
  policy: [
    [['policy', 'simulate'], /holdback policy simulate: missing option --policy/],
    [['policy', 'simulate', '--policy', '/nonexistent.json'], /\/nonexistent\.json: cannot read the policy/],
    [['policy', 'simulate', '--policy', POLICY, '--limit=-1'], /bad option --limit=-1/],
  ],
  clickhouse: [
    [['clickhouse', 'migrate', '--database=a-b'], /holdback clickhouse migrate: bad option --database=a-b/],
    [['clickhouse', 'migrate', '--group-id=g'], /holdback clickhouse migrate: unknown option --group-id/],
    [['clickhouse', 'sink', '--max-batch-rows', '0'], /bad option --max-batch-rows=0/],
  ],
  simulate: [
    [['simulate', '--merchants', '0'], /holdback simulate: bad option --merchants=0/],
    [['simulate', '--colour', 'red'], /holdback simulate: unknown option --colour/],
    [['simulate', '--rate'], /option --rate needs a value/],
  ],
  demo: [
    [['demo', '--rate=0'], /holdback demo: bad option --rate=0/],
    [['demo', '--duration', '5', 'more'], /holdback demo: unexpected argument 'more'/],
  ],
};

/** Per command: a runtime failure (the service unreachable, or refusing), and what its message says. */
const RUNTIME_FAILURES: Record<string, [string[], RegExp]> = {
  stack: [['stack', 'logs', 'kafka'], /no log yet/],
  schemas: [['schemas', 'check'], /refuses|401/],
  run: [['run', 'repayment'], /ECONNREFUSED 127\.0\.0\.1:1031/],
  rebuild: [['rebuild', 'repayment', '--from=a', '--application-id=b'], /ECONNREFUSED 127\.0\.0\.1:1031/],
  dlq: [['dlq', 'inspect'], /ECONNREFUSED 127\.0\.0\.1:1031/],
  policy: [['policy', 'simulate', `--policy=${POLICY}`], /ECONNREFUSED 127\.0\.0\.1:1031/],
  clickhouse: [
    ['clickhouse', 'migrate'],
    /cannot reach ClickHouse at HOLDBACK_CLICKHOUSE_URL=http:\/\/127\.0\.0\.1:1035/,
  ],
  simulate: [['simulate', '--events', '10'], /ECONNREFUSED 127\.0\.0\.1:1031/],
  demo: [['demo'], /ECONNREFUSED 127\.0\.0\.1:1031/],
};

let home: string;
/** A schema registry that refuses every request (401): a runtime failure that is quick to get. */
let refusing: Server;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  assertBuilt();
  home = mkdtempSync(join(tmpdir(), 'holdback-exit-'));
  refusing = createServer((_, res) => res.writeHead(401).end('{"message":"no"}'));
  await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
  env = cliEnv(home, {
    HOLDBACK_REGISTRY_URL: `http://127.0.0.1:${(refusing.address() as AddressInfo).port}`,
  });
});

afterAll(async () => {
  await new Promise((r) => refusing?.close(r));
  if (home) rmSync(home, { recursive: true, force: true });
});

test('every command has usage errors and a runtime failure here', () => {
  expect(Object.keys(USAGE_ERRORS).sort()).toEqual(Object.keys(COMMANDS).sort());
  expect(Object.keys(RUNTIME_FAILURES).sort()).toEqual(Object.keys(COMMANDS).sort());
});

test('holdback --version prints the version of package.json', async () => {
  const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
    version: string;
  };
  for (const flag of ['--version', '-v']) {
    const r = await holdback([flag], { env });
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({
      status: 0,
      stdout: `${version}\n`,
      stderr: '',
    });
  }
});

test('holdback alone prints the usage and exits 2; an unknown command exits 2 naming it', async () => {
  const none = await holdback([], { env });
  expect(none.status).toBe(2);
  for (const name of Object.keys(COMMANDS)) expect(none.stderr).toMatch(new RegExp(`^  ${name} `, 'm'));
  const unknown = await holdback(['stak', 'up'], { env });
  expect(unknown.status).toBe(2);
  expect(unknown.stderr).toContain("holdback: unknown command 'stak'");
  expect(unknown.stderr).toContain('(Did you mean stack?)');
});

test('a usage error exits 2 with a message naming the problem, for every command', async () => {
  const cases = Object.values(USAGE_ERRORS).flat();
  const results = await pooled(cases, 4, async ([args, message]) => {
    const r = await holdback(args, { env, timeoutMs: 30_000 });
    return { args: args.join(' '), status: r.status, stderr: r.stderr, named: message.test(r.stderr) };
  });
  const wrong = results.filter((r) => r.status !== 2 || !r.named);
  expect(wrong).toEqual([]);
});

test('a bad setting in the environment is a configuration error: exit 2, naming the setting', async () => {
  const r = await holdback(['run', 'repayment'], {
    env: { ...env, HOLDBACK_KAFKA_SECURITY_PROTOCOL: 'PLAIN_TEXT' },
  });
  expect(r.status).toBe(2);
  expect(r.stderr).toContain(
    'holdback run repayment: bad setting HOLDBACK_KAFKA_SECURITY_PROTOCOL=PLAIN_TEXT: one of PLAINTEXT',
  );
});

test('a runtime failure (a service unreachable or refusing) exits 1, for every command', async () => {
  const results = await pooled(Object.values(RUNTIME_FAILURES), 4, async ([args, message]) => {
    const r = await holdback(args, { env, timeoutMs: 90_000 });
    return {
      args: args.join(' '),
      status: r.status,
      out: r.stderr + r.stdout,
      named: message.test(r.stderr),
    };
  });
  const wrong = results.filter((r) => r.status !== 1 || !r.named);
  expect(wrong).toEqual([]);
});
