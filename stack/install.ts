/**
 * Installs what the local stack runs, once, idempotently, saying what it does:
 * - Debian packages (clickhouse-server, prometheus, prometheus-alertmanager) with apt-get;
 * - Apache Kafka's jars and Apicurio Registry's archive from Maven Central with mvn, cached in
 *   .holdback/cache (a download that was interrupted is redone: completion is marked by a stamp).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { homedir } from 'node:os';
import type { KafkaVersion } from '../connectors/endpoints';
import { CACHE_DIR, REPO_ROOT } from './paths';

export const APICURIO_VERSION = '3.3.3';

export class InstallError extends Error {
  override readonly name = 'InstallError';
}

type Log = (line: string) => void;

function which(bin: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Installs the Debian packages whose binaries are missing. Needs root or sudo. */
export async function ensureDebianPackages(wanted: Record<string, string>, log: Log): Promise<void> {
  const missing = Object.entries(wanted)
    .filter(([bin]) => !which(bin))
    .map(([, pkg]) => pkg);
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing)];
  const root = process.getuid?.() === 0;
  const prefix = root ? [] : which('sudo') ? ['sudo', '-n'] : undefined;
  if (!prefix) {
    throw new InstallError(
      `missing Debian packages ${pkgs.join(' ')}; run as root: apt-get update && apt-get install -y ${pkgs.join(' ')}`,
    );
  }
  log(`installing Debian packages: ${pkgs.join(', ')} (apt-get)`);
  await run([...prefix, 'apt-get', 'update', '-q'], log, 'apt-get update');
  await run(
    [...prefix, 'apt-get', 'install', '-y', '-q', '--no-install-recommends', ...pkgs],
    log,
    `apt-get install ${pkgs.join(' ')}`,
    { DEBIAN_FRONTEND: 'noninteractive' },
  );
  const still = Object.keys(wanted).filter((bin) => !which(bin));
  if (still.length > 0)
    throw new InstallError(`apt-get finished but ${still.join(', ')} is still not on PATH`);
}

/** Runs a command, showing a line of progress every few seconds, failing with its output's tail. */
function run(
  argv: string[],
  log: Log,
  what: string,
  env: NodeJS.ProcessEnv = {},
  progress?: () => string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const tail: string[] = [];
    let lines = 0;
    const keep = (chunk: Buffer): void => {
      for (const line of chunk.toString().split('\n')) {
        if (!line.trim()) continue;
        lines++;
        tail.push(line);
        if (tail.length > 30) tail.shift();
      }
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const started = Date.now();
    const timer = setInterval(() => {
      const secs = Math.round((Date.now() - started) / 1000);
      log(`  ... ${what}: ${secs}s${progress ? `, ${progress()}` : `, ${lines} lines of output`}`);
    }, 5000);
    child.on('error', (err) => {
      clearInterval(timer);
      reject(new InstallError(`${what} could not start: ${err.message}`));
    });
    child.on('close', (code) => {
      clearInterval(timer);
      if (code === 0) resolve();
      else reject(new InstallError(`${what} failed (exit ${code}):\n${tail.join('\n')}`));
    });
  });
}

function dirSizeMb(dir: string): number {
  if (!existsSync(dir)) return 0;
  let bytes = 0;
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else
        try {
          bytes += statSync(p).size;
        } catch {
          /* a file mvn is renaming */
        }
    }
  };
  walk(dir);
  return Math.round(bytes / 1e6);
}

function mvn(): string {
  if (!which('mvn'))
    throw new InstallError('Maven (mvn) is needed to fetch Kafka and the registry: apt-get install -y maven');
  return 'mvn';
}

/** Kafka 4 logs through log4j2; Kafka 3 through log4j 1 (reload4j). */
export function kafkaMajor(version: KafkaVersion): number {
  return Number(version.split('.')[0]);
}

/** Where a Kafka version's jars are cached (filled by ensureKafka). */
export function kafkaLibDir(version: KafkaVersion): string {
  return join(CACHE_DIR, `kafka-${version}`, 'lib');
}

/** Kafka's runtime jars (broker, KRaft, tools, a log4j backend): returns the lib folder. */
export async function ensureKafka(version: KafkaVersion, log: Log): Promise<string> {
  const lib = kafkaLibDir(version);
  const home = dirname(lib);
  const stamp = join(home, '.complete');
  if (existsSync(stamp)) return lib;
  log(`downloading Apache Kafka ${version} jars from Maven Central (about 56 MB, once)`);
  rmSync(home, { recursive: true, force: true });
  mkdirSync(lib, { recursive: true });
  await run(
    [
      mvn(),
      '-B',
      '-f',
      join(REPO_ROOT, 'stack', 'maven', 'pom.xml'),
      'dependency:copy-dependencies',
      `-DoutputDirectory=${lib}`,
      '-DincludeScope=runtime',
      `-Dkafka.version=${version}`,
      `-Pkafka${kafkaMajor(version)}`,
    ],
    log,
    'Kafka jars',
    {},
    // mvn fills ~/.m2 first and copies to lib/ at the end: count what has arrived there.
    () =>
      `${dirSizeMb(join(homedir(), '.m2', 'repository', 'org', 'apache', 'kafka'))} MB of Kafka's jars fetched`,
  );
  writeFileSync(stamp, new Date().toISOString());
  return lib;
}

/** Apicurio Registry's runnable app (Confluent-compatible API): returns the folder with quarkus-run.jar. */
export async function ensureApicurio(log: Log): Promise<string> {
  const home = join(CACHE_DIR, `apicurio-registry-${APICURIO_VERSION}`);
  const stamp = join(home, '.complete');
  if (existsSync(stamp)) return home;
  const artifact = `io.apicurio:apicurio-registry-app:${APICURIO_VERSION}:tar.gz:all`;
  const downloads = join(CACHE_DIR, 'downloads');
  mkdirSync(downloads, { recursive: true });
  const m2 = join(
    homedir(),
    '.m2',
    'repository',
    'io',
    'apicurio',
    'apicurio-registry-app',
    APICURIO_VERSION,
  );
  log(`downloading Apicurio Registry ${APICURIO_VERSION} from Maven Central (about 159 MB, once)`);
  await run(
    [mvn(), '-B', 'dependency:copy', `-Dartifact=${artifact}`, `-DoutputDirectory=${downloads}`],
    log,
    'Apicurio Registry',
    {},
    () => `${dirSizeMb(m2)} of about 159 MB`,
  );
  const archive = join(downloads, `apicurio-registry-app-${APICURIO_VERSION}-all.tar.gz`);
  rmSync(home, { recursive: true, force: true });
  mkdirSync(home, { recursive: true });
  log('unpacking Apicurio Registry');
  await run(['tar', 'xzf', archive, '-C', home], log, 'tar');
  if (!existsSync(join(home, 'quarkus-run.jar'))) throw new InstallError(`no quarkus-run.jar in ${archive}`);
  writeFileSync(stamp, new Date().toISOString());
  rmSync(archive, { force: true });
  return home;
}

function javaMajor(java: string): number | undefined {
  const r = spawnSync(java, ['-version'], { encoding: 'utf8' });
  const m = /version "(\d+)(?:\.(\d+))?/.exec(`${r.stderr}${r.stdout}`);
  if (!m) return undefined;
  const major = Number(m[1]);
  return major === 1 ? Number(m[2]) : major;
}

/** The newest Java on the machine that is at least `min`: JAVA_HOME, /usr/lib/jvm/*, then PATH. */
export function findJava(min: number): string {
  const candidates = new Set<string>();
  if (process.env['JAVA_HOME']) candidates.add(join(process.env['JAVA_HOME'], 'bin', 'java'));
  if (existsSync('/usr/lib/jvm')) {
    for (const d of readdirSync('/usr/lib/jvm')) candidates.add(join('/usr/lib/jvm', d, 'bin', 'java'));
  }
  const onPath = which('java');
  if (onPath) candidates.add(onPath);
  let best: { java: string; major: number } | undefined;
  for (const java of candidates) {
    if (!existsSync(java)) continue;
    const major = javaMajor(java);
    if (major !== undefined && major >= min && (!best || major > best.major)) best = { java, major };
  }
  if (!best) {
    throw new InstallError(
      `no Java ${min} or newer found (looked in JAVA_HOME, /usr/lib/jvm and PATH). ` +
        `Install one (for example a Temurin JDK) or run the stack with docker-compose instead.`,
    );
  }
  return best.java;
}
