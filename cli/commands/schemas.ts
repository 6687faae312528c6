/** `holdback schemas register | check`: the contract's schemas (schemas/*.avsc) in the schema registry. */
import { RegistryUnavailableError } from '../../connectors/codec';
import { IncompatibleSchemaError, SchemaRegistryClient, type SubjectCheck } from '../../connectors/registry';
import type { Command } from '../main';

const HELP = `usage: holdback schemas <register|check>

  register   set every subject <topic>-value to BACKWARD compatibility and register the local
             schemas (schemas/*.avsc); an incompatible schema is refused, with the reasons
  check      check the local schemas against the registry without changing it; exits 1 with the
             reasons when one is incompatible or a subject is not BACKWARD

registry: HOLDBACK_REGISTRY_URL, its credentials and CA (docs/deploy.md); default the local stack's`;

function describe(c: SubjectCheck): string {
  if (!c.exists) return 'new subject, nothing registered yet';
  const where = c.registeredId !== undefined ? `registered as id ${c.registeredId}` : 'not registered yet';
  return `${c.compatibilityLevel}, ${c.compatible ? 'compatible' : 'INCOMPATIBLE'}, ${where}`;
}

export const command: Command = {
  summary: 'register the contract schemas in the schema registry, or check them against it',
  async run(args) {
    const [verb, ...rest] = args;
    if (verb === '--help' || verb === '-h' || verb === 'help') {
      console.log(HELP);
      return 0;
    }
    if ((verb !== 'register' && verb !== 'check') || rest.length > 0) {
      console.error(HELP);
      return 2;
    }
    const client = new SchemaRegistryClient();
    try {
      if (verb === 'register') {
        const ids = await client.registerAll();
        for (const [topic, id] of Object.entries(ids)) console.log(`${topic}: schema id ${id} (BACKWARD)`);
        return 0;
      }
      const checks = await client.checkAll();
      for (const c of checks) {
        console.log(`${c.subject}: ${describe(c)}`);
        for (const problem of c.problems) console.log(`  - ${problem}`);
      }
      const failing = checks.filter((c) => c.problems.length > 0);
      if (failing.length === 0) return 0;
      console.error(
        `holdback schemas check: ${failing.length} subject(s) with problems: ${failing.map((c) => c.subject).join(', ')}`,
      );
      return 1;
    } catch (e) {
      if (e instanceof IncompatibleSchemaError) {
        console.error(`holdback schemas register: ${e.subject} was refused:`);
        for (const reason of e.explanation) console.error(`  - ${reason}`);
        return 1;
      }
      if (e instanceof RegistryUnavailableError) {
        console.error(`holdback schemas ${verb}: ${e.message}\nIs the stack up? (holdback stack status)`);
        return 1;
      }
      throw e;
    }
  },
};
