/**
 * Holdback on the secured local stack (`holdback stack up --secure`, test/secure/secure.env),
 * configured only through the HOLDBACK_* settings of its client.env, as a deployment would be:
 *
 * - the money path, exact to the minor unit, on both transports and each way of logging in to
 *   Kafka: SCRAM-SHA-512 over SASL_SSL, a client certificate (mTLS), OAUTHBEARER;
 * - a wrong password, an untrusted certificate and a SASL mechanism the brokers do not enable
 *   stop start-up within seconds, naming the setting;
 * - the registry's basic and bearer credentials, refused credentials and an untrusted CA;
 * - the demo (processors, simulator, ClickHouse sink), then dlq, policy and clickhouse status;
 * - every output of all that (logs, /health, /metrics, the DLQ's details, the demo's summary,
 *   error messages) scanned for every secret the stack configured.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Deduction, LoanEvent, PayoutEvent } from '../../schemas/generated/types';
import { TOPICS } from '../../schemas/topics';
import { RegistryAuthError, RegistryTlsError, SchemaRegistryClient } from '../../connectors/registry';
import { REPO_ROOT } from '../../stack/paths';
import { readSecretFile, securePaths } from '../../stack/secure';
import { connections, createTopics, deleteTopics, produce, readAll, registeredCodec } from '../harness/kafka';
import { spawnProcessor, terminate, waitFor, logTail } from '../harness/processes';

jest.setTimeout(300_000);

const run = `sec-${Date.now().toString(36)}`;
const paths = securePaths();
const HOLDBACK = join(REPO_ROOT, 'bin', 'holdback');

/** Every output the test collects, scanned for secrets at the end. */
const outputs: Array<{ what: string; text: string }> = [];
const keep = (what: string, text: string): string => {
  outputs.push({ what, text });
  return text;
};

/** `holdback <args>` to completion with settings changed; its output is kept for the scan. */
function holdback(
  args: string[],
  env: Record<string, string | undefined> = {},
  timeoutMs = 120_000,
): { status: number | null; out: string; ms: number } {
  const childEnv = { ...process.env };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k];
    else childEnv[k] = v;
  }
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [HOLDBACK, ...args], {
    env: childEnv,
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  const out = keep(`holdback ${args.join(' ')}`, `${r.stdout}${r.stderr}`);
  return { status: r.status, out, ms: Date.now() - t0 };
}

/** Kafka logins the secure stack takes, as the settings a client changes from client.env. */
const NO_SCRAM = {
  HOLDBACK_KAFKA_SASL_MECHANISM: undefined,
  HOLDBACK_KAFKA_SASL_USERNAME: undefined,
  HOLDBACK_KAFKA_SASL_PASSWORD_FILE: undefined,
};
const LOGINS: Record<string, Record<string, string | undefined>> = {
  'SCRAM-SHA-512': {},
  mTLS: {
    ...NO_SCRAM,
    HOLDBACK_KAFKA_SECURITY_PROTOCOL: 'SSL',
    // The mTLS listener: the SASL_SSL port + 2 (stack/secure.ts, connectors/endpoints.ts).
    HOLDBACK_KAFKA_BOOTSTRAP_SERVERS: `127.0.0.1:${connections.endpoints.kafkaNodes[0]!.mtlsPort}`,
    HOLDBACK_KAFKA_SSL_CERTIFICATE_LOCATION: paths.clientCert,
    HOLDBACK_KAFKA_SSL_KEY_LOCATION: paths.clientKey,
  },
  OAUTHBEARER: {
    ...NO_SCRAM,
    HOLDBACK_KAFKA_SASL_MECHANISM: 'OAUTHBEARER',
    HOLDBACK_KAFKA_SASL_OAUTHBEARER_TOKEN_FILE: paths.kafkaOauthToken,
  },
};

function funded(merchant: string, loan: string, at: number): LoanEvent {
  return {
    event_id: `${loan}-funded`,
    loan_id: loan,
    merchant_id: merchant,
    type: 'FUNDED',
    occurred_at: at,
    principal_minor: 100_000,
    fee_minor: 10_000,
    holdback_rate_bps: 1000,
    minimum_payment_minor: 0,
    period_days: 30,
    currency: 'USD',
  };
}

function scheduled(merchant: string, id: string, gross: number, at: number): PayoutEvent {
  return {
    event_id: `${id}-SCHEDULED`,
    merchant_id: merchant,
    payout_id: id,
    type: 'SCHEDULED',
    gross_amount_minor: gross,
    withheld_minor: null,
    currency: 'USD',
    occurred_at: at,
  };
}

afterAll(async () => {
  await deleteTopics(`${run}`);
});

describe.each(['kafkajs', 'rdkafka'])('the %s transport', (transport) => {
  test.each(Object.keys(LOGINS))('logs in with %s and withholds exactly', async (login) => {
    const app = `${run}-${transport}-${login.toLowerCase().replace(/[^a-z0-9]/g, '')}`;
    const prefix = `${app}.`;
    const codec = await registeredCodec();
    await createTopics(prefix);
    const p = spawnProcessor(
      app,
      'repayment',
      [`--topic-prefix=${prefix}`, `--application-id=${app}`, `--transport=${transport}`],
      LOGINS[login],
    );
    try {
      const M = `${app}-m`;
      const T = Date.now() - 86_400_000;
      await produce(prefix, codec, [{ topic: TOPICS.loanEvents, key: M, value: funded(M, `${app}-L`, T) }]);
      // 10% of 123457 rounds down to 12345; the balance 110000 - 12345.
      await produce(prefix, codec, [
        { topic: TOPICS.payouts, key: M, value: scheduled(M, `${app}-P`, 123_457, T + 60_000) },
      ]);
      await waitFor(
        'the deduction',
        async () => (await readAll(prefix, TOPICS.deductions, codec)).length === 1,
        90_000,
        1000,
      ).catch((e: Error) => {
        throw new Error(`${e.message}\n${logTail(p)}`);
      });
      const [d] = (await readAll(prefix, TOPICS.deductions, codec)) as Deduction[];
      expect([d!.type, d!.amount_minor, d!.balance_after_minor]).toEqual(['WITHHOLD', 12_345, 97_655]);
    } finally {
      await terminate(p);
      keep(`${app} log`, readFileSync(p.logFile, 'utf8'));
      await deleteTopics(prefix, [`${app}-changelog`]);
    }
  });

  const badStarts: Array<[string, Record<string, string | undefined>, RegExp]> = [
    [
      'a wrong password',
      { HOLDBACK_KAFKA_SASL_PASSWORD_FILE: undefined, HOLDBACK_KAFKA_SASL_PASSWORD: 'not-the-password' },
      /refused HOLDBACK_KAFKA_SASL_USERNAME=holdback with its HOLDBACK_KAFKA_SASL_PASSWORD/,
    ],
    [
      'an untrusted certificate',
      // The system's CAs do not know the stack's private CA.
      { HOLDBACK_KAFKA_SSL_CA_LOCATION: undefined },
      /TLS certificate .* is not trusted by the system's CAs \(HOLDBACK_KAFKA_SSL_CA_LOCATION is not set\)/,
    ],
    [
      'a SASL mechanism the brokers do not enable',
      { HOLDBACK_KAFKA_SASL_MECHANISM: 'PLAIN' },
      /do not enable HOLDBACK_KAFKA_SASL_MECHANISM=PLAIN/,
    ],
  ];
  test.each(badStarts)('%s stops start-up within seconds, naming the setting', (_, env, message) => {
    const r = holdback(
      ['run', 'repayment', `--application-id=${run}-bad`, `--transport=${transport}`],
      env,
      60_000,
    );
    expect(r.status).toBe(1);
    expect(r.out).toMatch(message);
    expect(r.ms).toBeLessThan(15_000);
  });
});

describe('the registry', () => {
  const c = connections.registry;

  test('takes basic credentials (USER_INFO) and a signed bearer token', async () => {
    expect(c.auth?.kind).toBe('basic');
    await expect(
      new SchemaRegistryClient({ url: c.url, ca: c.ca, auth: c.auth }).lookupAll(),
    ).resolves.toBeDefined();
    const bearer = new SchemaRegistryClient({
      url: c.url,
      ca: c.ca,
      auth: { kind: 'bearer', token: readSecretFile(paths.registryToken) },
    });
    await expect(bearer.lookupAll()).resolves.toBeDefined();
  });

  test('refused credentials and an untrusted CA are errors to fix, not outages to wait out', async () => {
    const t0 = Date.now();
    const wrong = new SchemaRegistryClient({
      url: c.url,
      ca: c.ca,
      auth: { kind: 'basic', username: 'holdback', password: 'not-the-password' },
      authSetting: 'HOLDBACK_REGISTRY_BASIC_AUTH_USER_INFO',
    });
    await expect(wrong.lookupAll()).rejects.toThrow(RegistryAuthError);
    await expect(wrong.lookupAll()).rejects.toThrow(/refuses HOLDBACK_REGISTRY_BASIC_AUTH_USER_INFO/);
    const none = new SchemaRegistryClient({ url: c.url, ca: c.ca });
    await expect(none.lookupAll()).rejects.toThrow(
      /needs credentials: set HOLDBACK_REGISTRY_BASIC_AUTH_USER_INFO/,
    );
    const untrusted = new SchemaRegistryClient({ url: c.url, auth: c.auth });
    await expect(untrusted.lookupAll()).rejects.toThrow(RegistryTlsError);
    await expect(untrusted.lookupAll()).rejects.toThrow(/HOLDBACK_REGISTRY_SSL_CA_LOCATION/);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  test('the CLI says which setting the registry refused', () => {
    const r = holdback(['schemas', 'check'], {
      HOLDBACK_REGISTRY_BASIC_AUTH_USER_INFO_FILE: undefined,
      HOLDBACK_REGISTRY_BASIC_AUTH_USER_INFO: 'holdback:not-the-password',
    });
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/refuses HOLDBACK_REGISTRY_BASIC_AUTH_USER_INFO/);
  });
});

describe('ClickHouse', () => {
  test('a wrong password or an untrusted CA stops the command naming the setting', () => {
    const wrong = holdback(['clickhouse', 'migrate'], {
      HOLDBACK_CLICKHOUSE_PASSWORD_FILE: undefined,
      HOLDBACK_CLICKHOUSE_PASSWORD: 'not-the-password',
    });
    expect(wrong.status).toBe(1);
    expect(wrong.out).toMatch(
      /refused HOLDBACK_CLICKHOUSE_USER=holdback with its HOLDBACK_CLICKHOUSE_PASSWORD/,
    );
    const untrusted = holdback(['clickhouse', 'migrate'], { HOLDBACK_CLICKHOUSE_SSL_CA_LOCATION: undefined });
    expect(untrusted.status).toBe(1);
    expect(untrusted.out).toMatch(
      /not trusted by the system's CAs \(HOLDBACK_CLICKHOUSE_SSL_CA_LOCATION is not set\)/,
    );
  });
});

describe('the demo and the tools around it', () => {
  test('the demo, dlq, policy and clickhouse status run on the secured stack', () => {
    const demo = holdback(['demo', '--duration=15', '--rate=800', '--merchants=40'], {}, 280_000);
    expect(demo.out).toMatch(/Holdback demo: what happened/);
    expect(demo.out).toMatch(/reconciliation mismatches: .* \(the same payouts\)/);
    expect(demo.status).toBe(0);
    for (const log of readdirSync(join(REPO_ROOT, '.holdback', 'demo')))
      keep(`demo ${log}`, readFileSync(join(REPO_ROOT, '.holdback', 'demo', log), 'utf8'));

    const dlq = holdback(['dlq', 'inspect', '--limit', '20']);
    expect(dlq.status).toBe(0);
    expect(dlq.out).toMatch(/MALFORMED_AVRO|BAD_MAGIC_BYTE|UNKNOWN_CURRENCY/);

    const candidate = join(REPO_ROOT, '.holdback', `${run}-policy.json`);
    writeFileSync(candidate, readFileSync(join(REPO_ROOT, 'policies', 'default.json')));
    const policy = holdback(['policy', 'simulate', '--policy', candidate, '--limit', '5']);
    expect(policy.status).toBe(0);

    const status = holdback(['clickhouse', 'status']);
    expect(status.out).toMatch(/deductions/);
  });
});

describe('secrets', () => {
  test("a processor's /health and /metrics need the token and carry no secret", async () => {
    const app = `${run}-endpoints`;
    const p = spawnProcessor(app, 'eligibility', [`--application-id=${app}`, '--metrics-port=24290']);
    const token = readSecretFile(paths.metricsToken);
    try {
      await waitFor(
        'the processor to be ready',
        async () => (await fetch('http://127.0.0.1:24290/ready').catch(() => undefined))?.status === 200,
        60_000,
        500,
      );
      expect((await fetch('http://127.0.0.1:24290/health')).status).toBe(401);
      expect((await fetch('http://127.0.0.1:24290/metrics')).status).toBe(401);
      expect((await fetch('http://127.0.0.1:24290/live')).status).toBe(200);
      const auth = { headers: { Authorization: `Bearer ${token}` } };
      const health = await fetch('http://127.0.0.1:24290/health', auth);
      expect(health.status).toBe(200);
      keep('/health', await health.text());
      keep('/metrics', await (await fetch('http://127.0.0.1:24290/metrics', auth)).text());
    } finally {
      await terminate(p);
      keep(`${app} log`, readFileSync(p.logFile, 'utf8'));
      await deleteTopics(`${app}-`);
    }
  });

  test('no secret the stack configured appears in anything Holdback printed or served', () => {
    const secrets = [
      paths.kafkaAdminPassword,
      paths.kafkaPassword,
      paths.kafkaOauthToken,
      paths.registryToken,
      paths.clickhousePassword,
      paths.metricsToken,
    ].map(readSecretFile);
    secrets.push(readSecretFile(paths.registryUserInfo).split(':').slice(1).join(':'));
    // And the wrong passwords the tests above gave.
    secrets.push('not-the-password');
    const leaksIn = (collected: typeof outputs): string[] =>
      collected.flatMap(({ what, text }) =>
        secrets.filter((s) => text.includes(s)).map((s) => `${what} contains a secret (${s.length} chars)`),
      );
    // The scan finds a secret where there is one...
    expect(leaksIn([{ what: 'planted', text: `password=${secrets[1]!}` }])).toHaveLength(1);
    // ...and there is none in what the tests above collected.
    expect(outputs.length).toBeGreaterThan(20);
    expect(leaksIn(outputs)).toEqual([]);
  });
});
