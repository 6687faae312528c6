/** The machine a benchmark ran on, recorded with its figures in bench/results/. */
import { cpus, platform, release } from 'node:os';

export function machine(): { cpu: string | undefined; cores: number; node: string; os: string } {
  return {
    cpu: cpus()[0]?.model.trim(),
    cores: cpus().length,
    node: process.version,
    os: `${platform()} ${release()}`,
  };
}
