import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeDeadTargets } from '../../connectors/metrics-server';

describe('Prometheus file_sd targets', () => {
  it('removes the target files of processes that no longer exist, and only those', () => {
    const dir = mkdtempSync(join(tmpdir(), 'targets-'));
    for (const name of ['holdback-repayment-100-9000.json', 'run-x-200-9001.json', 'notes.txt']) {
      writeFileSync(join(dir, name), '[]');
    }
    const removed = removeDeadTargets(dir, (pid) => pid === 200);
    expect(removed).toEqual(['holdback-repayment-100-9000.json']);
    expect(readdirSync(dir).sort()).toEqual(['notes.txt', 'run-x-200-9001.json']);
  });
});
