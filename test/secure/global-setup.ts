/**
 * The secure-stack tests need `holdback stack up --secure` (test/secure/secure.env) and a shell
 * with its client settings. When either is missing they fail here, once, saying how to start it.
 */
import { loadEndpoints } from '../../connectors/endpoints';
import { checkServices } from '../integration/services';

export default async function globalSetup(): Promise<void> {
  const e = loadEndpoints();
  const configured = process.env['HOLDBACK_KAFKA_SECURITY_PROTOCOL'] === 'SASL_SSL';
  const down = e.secure ? await checkServices() : [];
  if (!e.secure || !configured || down.length > 0) {
    throw new Error(
      `the secure-stack tests need the secured local stack and its client settings, but ${
        !e.secure
          ? 'HOLDBACK_STACK_SECURE is not set'
          : !configured
            ? "the client settings (.holdback/secure-stack/secure/client.env) are not in this shell's environment"
            : down.join('; ')
      }.\nStart it with \`set -a; . test/secure/secure.env; set +a; node bin/holdback stack up --secure\`, ` +
        'then `set -a; . "$HOLDBACK_HOME/secure/client.env"; set +a` and run the tests in that shell ' +
        '(or run `npm test`, which does all of it).',
    );
  }
}
