/**
 * `--help` and `-h` on every command and subcommand of the compiled CLI (enumerated from the
 * commander program itself, so that a new one cannot be missed) print the help and do nothing
 * else: exit 0, a description on every option's line, no file written (HOLDBACK_HOME, a fresh
 * directory, stays empty; nothing new in the repository's .holdback), no process started, no
 * connection opened (a preload refuses and reports every such call), and quickly.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command, Option } from 'commander';
import { buildProgram, COMMANDS } from '../../cli/main';
import { REPO_ROOT } from '../../stack/paths';
import { assertBuilt, cliEnv, holdback, NO_SIDE_EFFECTS, pooled, type CliResult } from '../harness/cli';

jest.setTimeout(300_000);

interface Node {
  readonly path: readonly string[];
  readonly cmd: Command;
}

function walk(cmd: Command, path: readonly string[] = []): Node[] {
  return [{ path, cmd }, ...cmd.commands.flatMap((c) => walk(c, [...path, c.name()]))];
}

const flat = (s: string): string => s.replace(/\s+/g, ' ').trim();

/** The options commander shows for a command: its own visible ones and the help option. */
const shown = (cmd: Command): Option[] => cmd.createHelp().visibleOptions(cmd);

/** What is wrong with one command's help output (empty: nothing). */
function problems(node: Node, r: CliResult): string[] {
  const name = ['holdback', ...node.path].join(' ');
  const out: string[] = [];
  if (r.status !== 0) out.push(`exit ${r.status ?? r.signal}`);
  if (r.stderr !== '') out.push(`stderr: ${r.stderr.trim()}`);
  if (!r.stdout.startsWith(`Usage: ${name}`)) out.push(`stdout does not start with "Usage: ${name}"`);
  if (r.ms > 15_000) out.push(`took ${r.ms} ms`);
  const lines = r.stdout.split('\n');
  // Every option line (two spaces, then a flag) has a description after its term.
  for (const line of lines.filter((l) => /^ {2}-/.test(l)))
    if (!/^ {2}-\S.*? {2,}\S/.test(line)) out.push(`an option without a description: "${line.trim()}"`);
  for (const o of shown(node.cmd)) {
    const term = o.long ?? o.short!;
    const line = lines.find((l) => /^ {2}-/.test(l) && l.trim().split(/[ ,]+/).includes(term));
    if (!line) out.push(`option ${term} is not listed`);
  }
  for (const sub of node.cmd.commands)
    if (!flat(r.stdout).includes(flat(sub.summary() || sub.description())))
      out.push(`subcommand ${sub.name()} is listed without its summary`);
  return out;
}

/** Top-level entries of a directory that are directories (what a command would create there). */
const dirs = (dir: string): string[] =>
  existsSync(dir)
    ? readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
        .sort()
    : [];

let nodes: Node[];
let home: string;

beforeAll(async () => {
  assertBuilt();
  nodes = walk(await buildProgram('all'));
  home = mkdtempSync(join(tmpdir(), 'holdback-help-'));
});

afterAll(() => {
  if (home) rmSync(home, { recursive: true, force: true });
});

test('the program holds every command, and every command and option has a description', () => {
  expect(nodes[0]!.cmd.commands.map((c) => c.name())).toEqual(Object.keys(COMMANDS));
  for (const { path, cmd } of nodes.slice(1)) {
    expect({ path, description: (cmd.description() || cmd.summary()).length > 0 }).toEqual({
      path,
      description: true,
    });
    for (const o of shown(cmd))
      expect({ path, option: o.flags, described: o.description.trim().length > 0 }).toEqual({
        path,
        option: o.flags,
        described: true,
      });
  }
  // Commands with subcommands (stack, run, ...) and leaves (simulate, demo) alike.
  expect(nodes.length).toBeGreaterThan(Object.keys(COMMANDS).length + 10);
  expect(nodes.map((n) => n.path.join(' '))).toEqual(
    expect.arrayContaining([
      'stack up',
      'run repayment',
      'run eligibility',
      'clickhouse migrate',
      'dlq skip',
    ]),
  );
});

test('--help and -h on every command and subcommand print the help and do nothing else', async () => {
  const holdbackDir = join(REPO_ROOT, '.holdback');
  const before = dirs(holdbackDir);
  const runs = nodes.flatMap((node) => [
    { node, args: [...node.path, '--help'] },
    { node, args: [...node.path, '-h'] },
  ]);
  // And `holdback help <command>` for each command.
  for (const node of nodes.filter((n) => n.path.length === 1))
    runs.push({ node, args: ['help', ...node.path] });
  const env = cliEnv(home);
  const results = await pooled(runs, 8, async ({ node, args }) => {
    const r = await holdback(args, { env, preload: NO_SIDE_EFFECTS, timeoutMs: 30_000 });
    return { args: args.join(' '), problems: problems(node, r) };
  });
  expect(results.filter((r) => r.problems.length > 0)).toEqual([]);
  expect(results.length).toBe(nodes.length * 2 + Object.keys(COMMANDS).length);

  // Nothing written: the fresh HOLDBACK_HOME is still empty, the repository's .holdback has no new directory.
  expect(readdirSync(home)).toEqual([]);
  expect(dirs(holdbackDir)).toEqual(before);
  // No process left that was started with it (a stack component would name its HOLDBACK_HOME).
  const processes = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
  expect(processes.split('\n').filter((p) => p.includes(home))).toEqual([]);
});

test('the top-level usage lists each command with its summary', async () => {
  const r = await holdback(['--help'], { env: cliEnv(home), preload: NO_SIDE_EFFECTS });
  expect(r.status).toBe(0);
  for (const [name, c] of Object.entries(COMMANDS))
    expect(flat(r.stdout)).toContain(`${name} ${flat(c.summary)}`);
});
