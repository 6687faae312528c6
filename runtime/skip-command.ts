/**
 * The operator's skip (docs/runbooks/HoldbackPartitionStopped.md): the request a processor's
 * POST /admin/skip takes, validated the same way on both sides (`holdback dlq skip` and the
 * processor), so a bad request is refused with the field and the reason before anything is done.
 */
import { z } from 'zod';

export const SKIP_REQUEST = z
  .object({
    /** The stopped input partition. */
    partition: z.coerce.number().int().min(0),
    /** The contract topic of the record that stopped it (without any --topic-prefix). */
    topic: z.string().min(1),
    /** Its offset: it must be the record the partition stopped at. */
    offset: z.coerce.number().int().min(0),
    /** Why the operator judged that it may go (kept in the dead letter's detail and the log). */
    note: z.string().min(3).max(500),
  })
  .strict();

export type SkipRequestBody = z.infer<typeof SKIP_REQUEST>;

/** The body's problem, naming the field, or the request. */
export function parseSkipRequest(
  body: unknown,
): { ok: true; value: SkipRequestBody } | { ok: false; error: string } {
  const r = SKIP_REQUEST.safeParse(body);
  if (r.success) return { ok: true, value: r.data };
  const issue = r.error.issues[0]!;
  return { ok: false, error: `${issue.path.join('.') || 'body'}: ${issue.message}` };
}
