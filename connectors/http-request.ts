/**
 * One HTTP(S) request by node's http/https modules, for the few calls that need what global
 * fetch cannot do without undici's own Agent: a private CA bundle. Used by the registry client's
 * own calls and the stack's health checks. Resolves with any status; rejects when no answer
 * came (refused, reset, TLS failure, timeout).
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type Agent } from 'node:https';

export interface HttpRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** PEM CA bundle for https (ignored when `agent` is given: the agent carries its own). */
  ca?: string;
  agent?: Agent;
  timeoutMs: number;
}

export function httpRequestText(url: string, o: HttpRequest): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(
      u,
      {
        method: o.method ?? 'GET',
        headers: o.headers,
        timeout: o.timeoutMs,
        ...(o.agent ? { agent: o.agent } : o.ca !== undefined && { ca: o.ca }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${o.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(o.body);
  });
}
