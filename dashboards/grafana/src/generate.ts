/**
 * `npm run gen:dashboards`: writes the dashboards as prettier-formatted JSON to
 * dashboards/grafana/dashboards/<uid>.json, where Grafana's provisioning
 * (provisioning/dashboards/holdback.yml) loads them. test/unit/dashboards.test.ts regenerates them
 * in memory and fails when the committed files are not current.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { pipelineHealth } from './pipeline-health';
import { repayments } from './repayments';
import { riskPortfolio } from './risk-portfolio';

export const DASHBOARD_DIR = join(__dirname, '..', 'dashboards');

export function dashboards(): dashboard.Dashboard[] {
  return [pipelineHealth(), riskPortfolio(), repayments()];
}

/**
 * Formats as `npx prettier --write` would (the repo's config for that path). Prettier's CLI in a
 * child process: its API loads plugins with dynamic import(), which Jest's CommonJS runtime refuses.
 */
function prettier(text: string, file: string): string {
  return execFileSync(
    process.execPath,
    [require.resolve('prettier/bin/prettier.cjs'), '--stdin-filepath', file],
    {
      input: text,
      encoding: 'utf8',
    },
  );
}

/** File name -> contents, as committed. */
export function generate(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of dashboards()) {
    const name = `${d.uid!}.json`;
    out[name] = prettier(JSON.stringify(d), join(DASHBOARD_DIR, name));
  }
  return out;
}

function main(): void {
  for (const [name, text] of Object.entries(generate())) {
    writeFileSync(join(DASHBOARD_DIR, name), text);
    console.log(`wrote ${join('dashboards/grafana/dashboards', name)}`);
  }
}

if (require.main === module) {
  main();
}
