/**
 * The schema registry, through its Confluent-compatible API (locally Apicurio Registry 3.3.3 at
 * loadEndpoints().registryUrl, i.e. /apis/ccompat/v7, whose global default compatibility is NONE):
 *
 * - registers every contract subject `<topic>-value` with BACKWARD compatibility set on the
 *   subject itself (PUT /config/<subject>), and returns the schema id of each topic for the codec;
 * - checks the local schemas against the registry (POST /compatibility/subjects/<subject>/
 *   versions/latest) and explains an incompatibility field by field, since the registry says only
 *   "not compatible";
 * - serves writer schemas by id to the codec (SchemaSource).
 *
 * @kafkajs/confluent-schema-registry does the calls it has (register, schema by id, id of a
 * schema, latest id); plain fetch does the rest (config, compatibility). Start-up calls retry
 * outages (connection refused, timeouts, 5xx) with exponential backoff for a bounded total time,
 * then throw RegistryUnavailableError. `getSchemaById` does not retry: the runtime that asked
 * retries with its own backoff, and a 404 there is data (UNKNOWN_SCHEMA_ID), not an outage.
 */
import * as avro from 'avsc';
import { COMPATIBILITY, SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { RegistryUnavailableError, SchemaLookupError, type SchemaSource } from './codec';
import { Agent as HttpsAgent } from 'node:https';
import { httpRequestText } from './http-request';
import { loadConnections, type HttpAuth } from './connections';
import { schemaText } from '../schemas/contract';
import type { RecordName } from '../schemas/generated/types';
import { subjectOf, TOPIC_SPECS, type TopicName } from '../schemas/topics';

export interface RetryPolicy {
  /** First wait after a failed attempt; doubles each time. */
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** Give up (RegistryUnavailableError) when the next wait would end after this much time. */
  readonly maxTotalMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { initialDelayMs: 100, maxDelayMs: 5_000, maxTotalMs: 60_000 };

export interface RegistryOptions {
  /**
   * The Confluent-compatible API's base URL, without credentials. Without it, the URL, the
   * credentials and the CA all come from HOLDBACK_REGISTRY_* (connectors/connections.ts).
   */
  readonly url?: string;
  /** Basic (Confluent's USER_INFO) or bearer credentials. */
  readonly auth?: HttpAuth;
  /** The setting the credentials came from, named when the registry refuses them. */
  readonly authSetting?: string;
  /** PEM text of the CA bundle that signed an https registry. */
  readonly ca?: string;
  /** Per request (default 5 s). */
  readonly requestTimeoutMs?: number;
  readonly retry?: Partial<RetryPolicy>;
  /** The subject of a topic's values; subjectOf (`<topic>-value`) by default. Tests add a run id. */
  readonly subjectFor?: (topic: TopicName) => string;
}

/** The registry refused a schema: it would break BACKWARD compatibility. */
export class IncompatibleSchemaError extends Error {
  override readonly name = 'IncompatibleSchemaError';
  constructor(
    readonly subject: string,
    readonly explanation: readonly string[],
  ) {
    super(`${subject}: the registry refused the schema: ${explanation.join('; ')}`);
  }
}

export interface CompatibilityReport {
  readonly subject: string;
  /** Whether the subject has a version to be compatible with. */
  readonly exists: boolean;
  /** The subject's effective compatibility level; undefined when the registry has no such subject. */
  readonly compatibilityLevel: string | undefined;
  readonly compatible: boolean;
  /** Why it is not compatible: the registry's messages, then each field that breaks. */
  readonly explanation: readonly string[];
}

export interface SubjectCheck extends CompatibilityReport {
  readonly topic: TopicName;
  /** The id of the local schema when it is already registered under the subject. */
  readonly registeredId: number | undefined;
  /** What must be fixed: an incompatible local schema, or a compatibility level other than BACKWARD. */
  readonly problems: readonly string[];
}

type Middleware = NonNullable<ConstructorParameters<typeof SchemaRegistry>[0]['middlewares']>[number];

/** Adds a header to every request of the library (a bearer token: mappersmith's auth is basic only). */
function headerMiddleware(name: string, value: string): Middleware {
  return () => ({
    async prepareRequest(next) {
      return (await next()).enhance({ headers: { [name]: value } });
    },
  });
}

/** mappersmith (under the library) has no default timeout: a black-holed registry would hang forever. */
function timeoutMiddleware(timeoutMs: number): Middleware {
  return () => ({
    async prepareRequest(next) {
      return (await next()).enhance({ timeout: timeoutMs });
    },
  });
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The HTTP status of an error from the library (its ResponseError), if any. */
function libStatus(e: unknown): number | undefined {
  const status = (e as { status?: unknown } | null)?.status;
  return e instanceof Error && e.name === 'ResponseError' && typeof status === 'number' ? status : undefined;
}

/** The registry refused our credentials (401/403): a setting to fix, not an outage to wait out. */
export class RegistryAuthError extends Error {
  override readonly name = 'RegistryAuthError';
}

/** The registry's TLS certificate is not trusted (or not its name's): a setting to fix, not an outage. */
export class RegistryTlsError extends Error {
  override readonly name = 'RegistryTlsError';
}

const TLS_FAILURE =
  /self[- ]signed certificate|unable to (?:verify|get local issuer)|certificate (?:has expired|is not yet valid|signature failure)|Hostname\/IP does not match|ERR_TLS_|wrong version number|CERT_/i;

/**
 * Whether an error means the registry did not answer, or answered that it cannot serve now.
 * mappersmith reports a request that got no HTTP answer (refused, reset, timed out) as status
 * 400 with the socket error as its text ("... - Error, status 400: connect ECONNREFUSED ...");
 * a registry's own 400 carries its JSON message instead.
 */
function isOutage(e: unknown): boolean {
  if (e instanceof RegistryAuthError || e instanceof RegistryTlsError) return false;
  if (e instanceof RegistryUnavailableError) return !TLS_FAILURE.test(e.message);
  const status = libStatus(e);
  if (status === undefined) return false;
  return (
    status >= 500 ||
    status === 408 ||
    status === 429 ||
    (status === 400 && /Error, status 400/.test(message(e)))
  );
}

function asUnavailable(what: string, e: unknown): RegistryUnavailableError {
  return e instanceof RegistryUnavailableError
    ? e
    : new RegistryUnavailableError(`${what}: ${message(e)}`, { cause: e });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

export class SchemaRegistryClient implements SchemaSource {
  readonly url: string;
  private readonly lib: SchemaRegistry;
  private readonly requestTimeoutMs: number;
  private readonly retry: RetryPolicy;
  private readonly subjectFor: (topic: TopicName) => string;

  private readonly auth: HttpAuth | undefined;
  private readonly authSetting: string;
  private readonly agent: HttpsAgent | undefined;

  constructor(opts: RegistryOptions = {}) {
    const c = opts.url === undefined ? loadConnections().registry : undefined;
    this.url = (opts.url ?? c!.url).replace(/\/+$/, '');
    this.auth = opts.auth ?? c?.auth;
    this.authSetting = opts.authSetting ?? c?.authSetting ?? 'the registry credentials';
    const ca = opts.ca ?? c?.ca;
    this.agent = ca !== undefined ? new HttpsAgent({ ca, keepAlive: true }) : undefined;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 5_000;
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.subjectFor = opts.subjectFor ?? subjectOf;
    const auth = this.auth;
    // Retries are ours (bounded, and none on the decode path), not the library's.
    this.lib = new SchemaRegistry({
      host: this.url,
      retry: { retries: 0 },
      ...(auth?.kind === 'basic' && { auth: { username: auth.username, password: auth.password } }),
      ...(this.agent && { agent: this.agent }),
      middlewares: [
        timeoutMiddleware(this.requestTimeoutMs),
        ...(auth?.kind === 'bearer' ? [headerMiddleware('Authorization', `Bearer ${auth.token}`)] : []),
        this.refusalMiddleware(),
      ],
    });
  }

  /** The Authorization header of our own requests. */
  private authorization(): Record<string, string> {
    const a = this.auth;
    if (!a) return {};
    if (a.kind === 'bearer') return { Authorization: `Bearer ${a.token}` };
    return { Authorization: `Basic ${Buffer.from(`${a.username}:${a.password}`).toString('base64')}` };
  }

  private refused(status: number, what: string): RegistryAuthError {
    return new RegistryAuthError(
      `${what}: the registry at ${this.url} answered ${status} ${status === 401 ? 'Unauthorized' : 'Forbidden'}: ` +
        (this.auth
          ? `it refuses ${this.authSetting}; check them`
          : 'it needs credentials: set HOLDBACK_REGISTRY_BASIC_AUTH_USER_INFO or HOLDBACK_REGISTRY_BEARER_TOKEN (or _FILE)'),
    );
  }

  /** Turns the library's 401/403 into RegistryAuthError and its TLS failures into RegistryTlsError. */
  private refusalMiddleware(): Middleware {
    return () => ({
      response: async (next) => {
        try {
          return await next();
        } catch (e) {
          const status = (e as { status?: unknown } | null)?.status;
          const code = typeof status === 'function' ? (status as () => unknown).call(e) : status;
          if (code === 401 || code === 403) throw this.refused(code, 'the registry');
          throw e;
        }
      },
    });
  }

  private tlsFailure(what: string, e: unknown): RegistryTlsError {
    return new RegistryTlsError(
      `${what}: the registry's TLS certificate at ${this.url} is not trusted: ${message(e)}. ` +
        (this.agent
          ? 'Check HOLDBACK_REGISTRY_SSL_CA_LOCATION: it must hold the CA that signed the registry'
          : "Set HOLDBACK_REGISTRY_SSL_CA_LOCATION to the CA that signed the registry's certificate"),
      { cause: e },
    );
  }

  /** SchemaSource: one attempt; the caller retries a RegistryUnavailableError. */
  async getSchemaById(id: number): Promise<string> {
    let schema: unknown;
    try {
      schema = await this.lib.getSchema(id);
    } catch (e) {
      if (libStatus(e) === 404)
        throw new SchemaLookupError('UNKNOWN_SCHEMA_ID', `the registry has no schema ${id}`);
      if (e instanceof Error && e.name === 'ConfluentSchemaRegistryArgumentError') {
        throw new SchemaLookupError(
          'SCHEMA_MISMATCH',
          `schema ${id} is not a usable Avro schema: ${e.message}`,
        );
      }
      // Not the record's fault: an outage, or a registry that refuses us (auth). Retry, never DLQ.
      throw asUnavailable(`fetching schema ${id} from ${this.url}`, e);
    }
    if (!avro.Type.isType(schema))
      throw new SchemaLookupError('SCHEMA_MISMATCH', `schema ${id} is not an Avro schema`);
    return JSON.stringify((schema as avro.Type).schema({ exportAttrs: true }));
  }

  /** Registers every topic's local schema (BACKWARD per subject); returns each topic's schema id. */
  async registerAll(): Promise<Record<TopicName, number>> {
    const ids: Partial<Record<TopicName, number>> = {};
    for (const spec of TOPIC_SPECS) {
      ids[spec.name] = await this.register(this.subjectFor(spec.name), schemaText(spec.record as RecordName));
    }
    return ids as Record<TopicName, number>;
  }

  /** The ids of the local schemas, which must be registered already (for processes that do not register). */
  async lookupAll(): Promise<Record<TopicName, number>> {
    const ids: Partial<Record<TopicName, number>> = {};
    for (const spec of TOPIC_SPECS) {
      const subject = this.subjectFor(spec.name);
      const id = await this.lookupId(subject, schemaText(spec.record as RecordName));
      if (id === undefined) {
        throw new Error(
          `${subject} does not have the local ${spec.record} schema: run \`holdback schemas register\``,
        );
      }
      ids[spec.name] = id;
    }
    return ids as Record<TopicName, number>;
  }

  /** Checks every topic's local schema against its subject. */
  async checkAll(): Promise<SubjectCheck[]> {
    const checks: SubjectCheck[] = [];
    for (const spec of TOPIC_SPECS) {
      const subject = this.subjectFor(spec.name);
      const schema = schemaText(spec.record as RecordName);
      const report = await this.checkCompatibility(subject, schema);
      const registeredId = report.exists ? await this.lookupId(subject, schema) : undefined;
      const problems: string[] = [];
      if (report.exists && report.compatibilityLevel !== 'BACKWARD') {
        problems.push(`compatibility is ${report.compatibilityLevel ?? 'unset'}, not BACKWARD`);
      }
      if (!report.compatible) problems.push(...report.explanation);
      checks.push({ ...report, topic: spec.name, registeredId, problems });
    }
    return checks;
  }

  /**
   * Sets the subject to BACKWARD, then registers the schema (an already registered schema keeps
   * its id). Throws IncompatibleSchemaError, with the reasons, when the registry refuses it.
   */
  async register(subject: string, schema: string): Promise<number> {
    await this.setCompatibility(subject, 'BACKWARD');
    try {
      const registered = await this.retrying(`registering ${subject}`, () =>
        this.lib.register(
          { type: SchemaType.AVRO, schema },
          { subject, compatibility: COMPATIBILITY.BACKWARD },
        ),
      );
      return registered.id;
    } catch (e) {
      if (libStatus(e) !== 409) throw e;
      const latest = await this.latestType(subject);
      const reasons = latest
        ? explainBackward(avro.Type.forSchema(JSON.parse(schema) as avro.Schema), latest)
        : [];
      // The library prefixes its client id ("Confluent_Schema_Registry - ") to the registry's message.
      throw new IncompatibleSchemaError(subject, [
        `registry: ${message(e).replace(/^\S+ - /, '')}`,
        ...reasons,
      ]);
    }
  }

  /** Whether `schema` could be registered as the subject's next version, and if not, why. */
  async checkCompatibility(subject: string, schema: string): Promise<CompatibilityReport> {
    const compatibilityLevel = await this.getCompatibility(subject);
    const latest = await this.latestType(subject);
    if (!latest) return { subject, exists: false, compatibilityLevel, compatible: true, explanation: [] };
    const path = `/compatibility/subjects/${encodeURIComponent(subject)}/versions/latest?verbose=true`;
    const res = await this.retrying(`checking ${subject}`, () => this.http('POST', path, { schema }));
    if (res.status !== 200)
      throw new Error(`checking ${subject}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
    const body = res.body as { is_compatible?: unknown; messages?: unknown };
    const compatible = body.is_compatible === true;
    const messages = Array.isArray(body.messages) ? body.messages.map((m) => `registry: ${String(m)}`) : [];
    const explanation = compatible
      ? []
      : [...messages, ...explainBackward(avro.Type.forSchema(JSON.parse(schema) as avro.Schema), latest)];
    return { subject, exists: true, compatibilityLevel, compatible, explanation };
  }

  /** Sets the subject's own compatibility level (the registry's global default stays as it is). */
  async setCompatibility(subject: string, level: 'BACKWARD'): Promise<void> {
    const path = `/config/${encodeURIComponent(subject)}`;
    const res = await this.retrying(`configuring ${subject}`, () =>
      this.http('PUT', path, { compatibility: level }),
    );
    if (res.status !== 200)
      throw new Error(`configuring ${subject}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  }

  /** The subject's effective compatibility level; undefined when the registry does not know the subject. */
  async getCompatibility(subject: string): Promise<string | undefined> {
    const path = `/config/${encodeURIComponent(subject)}?defaultToGlobal=true`;
    const res = await this.retrying(`reading the configuration of ${subject}`, () => this.http('GET', path));
    if (res.status === 404) return undefined;
    const level = (res.body as { compatibilityLevel?: unknown } | undefined)?.compatibilityLevel;
    if (res.status !== 200 || typeof level !== 'string') {
      throw new Error(
        `reading the configuration of ${subject}: HTTP ${res.status} ${JSON.stringify(res.body)}`,
      );
    }
    return level;
  }

  private async lookupId(subject: string, schema: string): Promise<number | undefined> {
    try {
      return await this.retrying(`looking up ${subject}`, () =>
        this.lib.getRegistryIdBySchema(subject, { type: SchemaType.AVRO, schema }),
      );
    } catch (e) {
      // The library turns the registry's 404 (no such subject or schema) into this error.
      if (e instanceof Error && e.name === 'ConfluentSchemaRegistryError') return undefined;
      throw e;
    }
  }

  /** The subject's latest schema, or undefined when it has no version. */
  private async latestType(subject: string): Promise<avro.Type | undefined> {
    let id: number;
    try {
      id = await this.retrying(`reading the latest ${subject}`, () => this.lib.getLatestSchemaId(subject));
    } catch (e) {
      if (libStatus(e) === 404) return undefined;
      throw e;
    }
    return (await this.retrying(`reading schema ${id}`, () => this.lib.getSchema(id))) as avro.Type;
  }

  /** One plain HTTP call; an outage (no answer, timeout, 5xx, 408, 429) is RegistryUnavailableError. */
  private async http(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: unknown }> {
    const what = `${method} ${this.url}${path}`;
    let res: { status: number; text: string };
    try {
      res = await httpRequestText(this.url + path, {
        method,
        headers: {
          'Content-Type': CONTENT_TYPE,
          Accept: `${CONTENT_TYPE}, application/json`,
          ...this.authorization(),
        },
        ...(body !== undefined && { body: JSON.stringify(body) }),
        ...(this.agent && { agent: this.agent }),
        timeoutMs: this.requestTimeoutMs,
      });
    } catch (e) {
      if (TLS_FAILURE.test(message(e))) throw this.tlsFailure(what, e);
      throw asUnavailable(what, e);
    }
    let parsed: unknown = res.text;
    try {
      parsed = res.text === '' ? undefined : JSON.parse(res.text);
    } catch {
      // Not JSON: keep the text for the message.
    }
    if (res.status === 401 || res.status === 403) throw this.refused(res.status, what);
    if (res.status >= 500 || res.status === 408 || res.status === 429) {
      throw new RegistryUnavailableError(`${what}: HTTP ${res.status} ${JSON.stringify(parsed)}`);
    }
    return { status: res.status, body: parsed };
  }

  /** Runs `fn` until it succeeds, retrying outages with exponential backoff for at most maxTotalMs. */
  private async retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const started = Date.now();
    let delay = this.retry.initialDelayMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (!(e instanceof RegistryTlsError) && TLS_FAILURE.test(message(e))) throw this.tlsFailure(what, e);
        if (!isOutage(e)) throw e;
        const elapsed = Date.now() - started;
        if (elapsed + delay > this.retry.maxTotalMs) {
          throw new RegistryUnavailableError(
            `${what}: the registry at ${this.url} is unavailable after ${attempt} attempts in ${elapsed} ms: ${message(e)}`,
            { cause: e },
          );
        }
        await sleep(delay * (0.5 + Math.random() / 2));
        delay = Math.min(delay * 2, this.retry.maxDelayMs);
      }
    }
  }
}

/**
 * Why `reader` cannot read what `writer` wrote (BACKWARD: the new schema reads the latest
 * version's data), field by field, in words.
 */
export function explainBackward(reader: avro.Type, writer: avro.Type): string[] {
  try {
    reader.createResolver(writer);
    return [];
  } catch (e) {
    if (reader.typeName !== 'record' || writer.typeName !== 'record') return [message(e)];
    const reasons: string[] = [];
    if (reader.name !== writer.name)
      reasons.push(`the record is ${reader.name}, the registered one ${writer.name}`);
    const written = new Map((writer as avro.types.RecordType).fields.map((f) => [f.name, f]));
    for (const field of (reader as avro.types.RecordType).fields) {
      const old = [field.name, ...field.aliases].map((n) => written.get(n)).find((f) => f !== undefined);
      if (!old) {
        if (field.defaultValue() === undefined) {
          reasons.push(
            `field ${field.name} is new and has no default, so records written before cannot be read`,
          );
        }
        continue;
      }
      try {
        field.type.createResolver(old.type);
      } catch (fieldError) {
        reasons.push(
          `field ${field.name} changed from ${JSON.stringify(old.type.schema())} to ${JSON.stringify(field.type.schema())}: ${message(fieldError)}`,
        );
      }
    }
    return reasons.length > 0 ? reasons : [message(e)];
  }
}
