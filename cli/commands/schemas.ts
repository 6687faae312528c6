/** `holdback schemas register | check`: the contract's schemas (schemas/*.avsc) in the schema registry. */
import { RegistryUnavailableError } from '../../connectors/codec';
import { IncompatibleSchemaError, SchemaRegistryClient, type SubjectCheck } from '../../connectors/registry';
import { commandModule, HoldbackCommand } from '../program';

function describe(c: SubjectCheck): string {
  if (!c.exists) return 'new subject, nothing registered yet';
  const where = c.registeredId !== undefined ? `registered as id ${c.registeredId}` : 'not registered yet';
  return `${c.compatibilityLevel}, ${c.compatible ? 'compatible' : 'INCOMPATIBLE'}, ${where}`;
}

const REGISTRY = `
registry: HOLDBACK_REGISTRY_URL, its credentials and CA (docs/deploy.md); default the local stack's`;

async function register(): Promise<number> {
  try {
    const ids = await new SchemaRegistryClient().registerAll();
    for (const [topic, id] of Object.entries(ids)) console.log(`${topic}: schema id ${id} (BACKWARD)`);
    return 0;
  } catch (e) {
    if (e instanceof IncompatibleSchemaError) {
      console.error(`holdback schemas register: ${e.subject} was refused:`);
      for (const reason of e.explanation) console.error(`  - ${reason}`);
      return 1;
    }
    return unavailable('register', e);
  }
}

async function check(): Promise<number> {
  try {
    const checks = await new SchemaRegistryClient().checkAll();
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
    return unavailable('check', e);
  }
}

function unavailable(verb: string, e: unknown): number {
  if (e instanceof RegistryUnavailableError) {
    console.error(`holdback schemas ${verb}: ${e.message}\nIs the stack up? (holdback stack status)`);
    return 1;
  }
  throw e;
}

function create(): HoldbackCommand {
  const schemas = new HoldbackCommand('schemas').description(
    "The contract's schemas (schemas/*.avsc) in the schema registry, subject <topic>-value.",
  );
  schemas.operandNoun = 'subcommand';
  schemas.addHelpText('after', REGISTRY);
  schemas
    .command('register')
    .summary('set every subject to BACKWARD compatibility and register the local schemas')
    .description(
      'Sets every subject <topic>-value to BACKWARD compatibility and registers the local schemas ' +
        '(schemas/*.avsc). An incompatible schema is refused, with the reasons (exit 1).',
    )
    .addHelpText('after', REGISTRY)
    .runs(register);
  schemas
    .command('check')
    .summary('check the local schemas against the registry without changing it')
    .description(
      'Checks the local schemas against the registry without changing it; exits 1 with the reasons ' +
        'when one is incompatible or a subject is not BACKWARD.',
    )
    .addHelpText('after', REGISTRY)
    .runs(check);
  return schemas;
}

export const command = commandModule(create);
