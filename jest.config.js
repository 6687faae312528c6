// Four projects: `unit` needs nothing running; `integration` talks to the real local stack
// (`holdback stack up`) and fails, never skips, when a service is unreachable; `fault` kills and
// restarts processes and the broker, so it runs alone (`jest --selectProjects fault --runInBand`);
// `cluster` does the same to a three-node Kafka (test/cluster/cluster.env); `secure` runs on the
// secured stack (test/secure/secure.env, `holdback stack up --secure`).
const transform = { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022' } }] };
module.exports = {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/test/integration/global-setup.ts',
    },
    {
      // Kills and restarts shared services: run alone, in band (scripts/test.sh does).
      displayName: 'fault',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/fault/**/*.test.ts'],
      globalSetup: '<rootDir>/test/integration/global-setup.ts',
    },
    {
      // Kills and restarts the brokers of a three-node cluster (test/cluster/cluster.env): alone, in band.
      displayName: 'cluster',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/cluster/**/*.test.ts'],
      globalSetup: '<rootDir>/test/cluster/global-setup.ts',
    },
    {
      // The secured stack (test/secure/secure.env) with its client settings in the environment.
      displayName: 'secure',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/secure/**/*.test.ts'],
      globalSetup: '<rootDir>/test/secure/global-setup.ts',
    },
  ],
};
