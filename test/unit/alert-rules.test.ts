/**
 * The alerting configuration as code: promtool checks every rule file the stack loads and runs
 * every promtool unit-test file, amtool checks the Alertmanager config, and every alert names a
 * severity, a summary, a description and a runbook page that exists. Needs promtool and amtool
 * (Debian's prometheus and prometheus-alertmanager, which `holdback stack up` installs): a missing
 * binary fails these tests with how to install it, it never skips them.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse } from 'yaml';
import { ALERTMANAGER_CONFIG, RULES_DIR } from '../../stack/components';
import { REPO_ROOT } from '../../stack/paths';

const TESTS_DIR = join(REPO_ROOT, 'dashboards', 'prometheus', 'tests');
const RUNBOOKS_DIR = join(REPO_ROOT, 'docs', 'runbooks');
const SEVERITIES = ['critical', 'warning'];

const INSTALL_HINT =
  'Install it with `node bin/holdback stack up` (installs the Debian packages prometheus and ' +
  'prometheus-alertmanager), or `sudo apt-get install prometheus prometheus-alertmanager`.';

/** Runs one of the Prometheus tools; any failure throws with the tool's own output. */
function tool(bin: 'promtool' | 'amtool', args: string[]): string {
  try {
    return execFileSync(bin, args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: 'pipe', timeout: 60_000 });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & {
      status?: number | null;
      signal?: string | null;
      stdout?: string;
      stderr?: string;
    };
    if (err.code === 'ENOENT')
      throw new Error(`${bin} is not installed (not found on PATH). ${INSTALL_HINT}`);
    throw new Error(
      `\`${bin} ${args.join(' ')}\` failed (exit ${err.status ?? err.signal ?? err.code}):\n` +
        `${err.stdout ?? ''}${err.stderr ?? ''}`,
    );
  }
}

function yamlFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yml') || f.endsWith('.yaml'))
    .sort()
    .map((f) => relative(REPO_ROOT, join(dir, f)));
}

interface Rule {
  alert?: string;
  record?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

interface RuleTest {
  alertname: string;
  exp_alerts?: unknown[] | null;
}

const ruleFiles = yamlFiles(RULES_DIR);
const testFiles = yamlFiles(TESTS_DIR);

const alerts: Rule[] = ruleFiles.flatMap((f) => {
  const doc = parse(readFileSync(join(REPO_ROOT, f), 'utf8')) as { groups?: Array<{ rules?: Rule[] }> };
  return (doc.groups ?? []).flatMap((g) => g.rules ?? []).filter((r) => r.alert !== undefined);
});
const alertNames = [...new Set(alerts.map((a) => a.alert!))].sort();

const ruleTests: RuleTest[] = testFiles.flatMap((f) => {
  const doc = parse(readFileSync(join(REPO_ROOT, f), 'utf8')) as {
    tests?: Array<{ alert_rule_test?: RuleTest[] }>;
  };
  return (doc.tests ?? []).flatMap((t) => t.alert_rule_test ?? []);
});

test('the stack loads rule files and there are promtool tests for them', () => {
  expect(ruleFiles).toContain('dashboards/prometheus/rules/holdback-alerts.yml');
  expect(testFiles).toContain('dashboards/prometheus/tests/holdback-alerts.test.yml');
  expect(alertNames.length).toBeGreaterThan(0);
});

test.each(ruleFiles)('promtool check rules %s', (file) => {
  expect(tool('promtool', ['check', 'rules', file])).toMatch(/SUCCESS/);
});

test.each(testFiles)(
  'promtool test rules %s',
  (file) => {
    expect(tool('promtool', ['test', 'rules', file])).toMatch(/SUCCESS/);
  },
  60_000,
);

test('amtool check-config accepts the Alertmanager config', () => {
  expect(tool('amtool', ['check-config', relative(REPO_ROOT, ALERTMANAGER_CONFIG)])).toMatch(/SUCCESS/);
});

describe.each(alertNames)('alert %s', (name) => {
  const rules = alerts.filter((a) => a.alert === name);

  test('has a severity, a summary, a description and a runbook that exists', () => {
    for (const rule of rules) {
      expect(SEVERITIES).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary?.trim()).toBeTruthy();
      expect(rule.annotations?.description?.trim()).toBeTruthy();
      const url = rule.annotations?.runbook_url;
      expect(url).toBe(`docs/runbooks/${name}.md`);
      expect([url, existsSync(join(REPO_ROOT, url!))]).toEqual([url, true]);
    }
  });

  test('has a promtool test where it fires and one where it stays quiet', () => {
    const cases = ruleTests.filter((t) => t.alertname === name);
    expect(cases.some((t) => (t.exp_alerts ?? []).length > 0)).toBe(true);
    expect(cases.some((t) => (t.exp_alerts ?? []).length === 0)).toBe(true);
  });

  test('is listed in docs/runbooks/README.md', () => {
    expect(readFileSync(join(RUNBOOKS_DIR, 'README.md'), 'utf8')).toContain(`(${name}.md)`);
  });
});

test('every runbook page belongs to an alert', () => {
  const pages = readdirSync(RUNBOOKS_DIR).filter((f) => f.endsWith('.md') && f !== 'README.md');
  expect(pages.map((p) => p.replace(/\.md$/, '')).sort()).toEqual(alertNames);
});
