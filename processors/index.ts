/** The processors `holdback run <name>` can run, by name. Each is pure; the runtime supplies I/O. */
import type { Processor } from './api';
import { createRepaymentProcessor } from './repayment';

export const PROCESSORS: Readonly<Record<string, () => Processor<unknown>>> = {
  repayment: () => createRepaymentProcessor() as Processor<unknown>,
};
