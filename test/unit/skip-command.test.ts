import { parseFlags } from '../../connectors/flags';
import { parseSkipRequest, SKIP_REQUEST } from '../../runtime/skip-command';

test('a skip request names the partition, the topic, the offset and why, and nothing else', () => {
  const ok = { partition: 0, topic: 'marketplace.payouts.v1', offset: 7, note: 'INC-1: judged wrong' };
  expect(parseSkipRequest(ok)).toEqual({ ok: true, value: ok });
  expect(parseSkipRequest({ ...ok, offset: -1 })).toMatchObject({
    ok: false,
    error: expect.stringMatching(/^offset: /),
  });
  expect(parseSkipRequest({ ...ok, note: '' })).toMatchObject({
    ok: false,
    error: expect.stringMatching(/^note: /),
  });
  expect(parseSkipRequest({ ...ok, extra: 1 })).toMatchObject({ ok: false });
  expect(parseSkipRequest(null)).toMatchObject({ ok: false });
});

test('holdback dlq skip names a missing option as missing', () => {
  expect(() => parseFlags(SKIP_REQUEST, ['--partition=0', '--offset=1', '--note=why not'])).toThrow(
    /missing option --topic/,
  );
});
