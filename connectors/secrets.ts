/**
 * Secrets never leave the process: every secret value a command loads (a SASL password, a key
 * password, registry credentials, a ClickHouse password, a bearer token) is remembered here, and
 * every place text leaves the process (the JSON log, the CLI's last error, /health and command
 * answers, a dead letter's detail) passes it through `redact`. That is the backstop; messages are
 * written not to carry secrets in the first place (URLs are printed through `maskUrl`).
 */

const known = new Set<string>();
const MASK = '***';
/** Shorter values would mask ordinary words and numbers; no real secret is this short. */
const MIN_SECRET_CHARS = 4;

/** Remembers a secret value so that `redact` masks it wherever it appears. */
export function registerSecret(value: string | undefined): void {
  if (value !== undefined && value.length >= MIN_SECRET_CHARS) known.add(value);
}

/** The text with every registered secret, and a URL's password, masked. */
export function redact(text: string): string {
  let out = maskUrlsIn(text);
  for (const secret of known) if (out.includes(secret)) out = out.split(secret).join(MASK);
  return out;
}

/** A value (an error, an object) as redacted text. */
export function redactValue(value: unknown): string {
  return redact(value instanceof Error ? value.message : typeof value === 'string' ? value : String(value));
}

/** `scheme://user:password@host/...` with the password masked (the user is kept: it helps). */
export function maskUrl(url: string): string {
  return maskUrlsIn(url);
}

const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^/\s:@]*):([^/\s@]*)@/gi;

function maskUrlsIn(text: string): string {
  return text.replace(URL_USERINFO, (_, scheme: string, user: string) => `${scheme}${user}:${MASK}@`);
}

/** For tests: forget every registered secret. */
export function forgetSecrets(): void {
  known.clear();
}
