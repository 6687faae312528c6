/**
 * JSON-lines logging to stderr: one object per line, never secrets or payloads. Each line passes
 * through `redact` (connectors/secrets.ts): a secret that reached a field by mistake (a library's
 * error message, say) is masked.
 */
import { redact } from '../connectors/secrets';
import type { Logger } from './kafka-runtime';

export function jsonLogger(fields: Record<string, unknown>): Logger {
  const write = (level: string, msg: string, extra?: Record<string, unknown>): void => {
    process.stderr.write(
      `${redact(JSON.stringify({ t: new Date().toISOString(), level, msg, ...fields, ...extra }))}\n`,
    );
  };
  return {
    info: (msg, extra) => write('info', msg, extra),
    warn: (msg, extra) => write('warn', msg, extra),
    error: (msg, extra) => write('error', msg, extra),
  };
}
