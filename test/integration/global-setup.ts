/**
 * Integration tests talk to the real local stack. When a service is unreachable they fail here,
 * once, saying how to start it; they never skip.
 */
import { checkServices } from './services';

export default async function globalSetup(): Promise<void> {
  const down = await checkServices();
  if (down.length > 0) {
    throw new Error(
      `integration tests need the local stack, but ${down.join('; ')}.\n` +
        'Start it with `node bin/holdback stack up` (or run `npm test`, which starts it), ' +
        'or with Docker: `docker compose up -d`.',
    );
  }
}
