/** Where the local stack keeps its downloads (cache/) and its running state (run/). Git-ignored. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The repository root: the nearest folder above this file with Holdback's package.json (works from dist/ too). */
function findRepoRoot(start: string): string {
  let dir = start;
  while (true) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'holdback')
      return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find Holdback's package.json above ${start}`);
    dir = parent;
  }
}

export const REPO_ROOT = findRepoRoot(__dirname);
/** HOLDBACK_HOME moves the stack's downloads and state elsewhere (default: .holdback/ in the repo). */
export const HOME = process.env['HOLDBACK_HOME'] ?? join(REPO_ROOT, '.holdback');
export const CACHE_DIR = join(HOME, 'cache');
export const RUN_DIR = join(HOME, 'run');

export function runDir(component: string): string {
  return join(RUN_DIR, component);
}
