// Lint rules. The one that matters most: processors/ stay pure. They import no I/O (Kafka,
// ClickHouse, metrics, files, network, the runtime or connectors) and read no clock, randomness
// or environment: time and ids are inputs (docs/architecture.md).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const ioModules = [
  'kafkajs',
  'node-rdkafka',
  '@kafkajs/confluent-schema-registry',
  '@clickhouse/client',
  'prom-client',
  'fs',
  'net',
  'http',
  'https',
  'child_process',
  'crypto',
  'node:*',
];

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.holdback/**', 'bench/results/**', '**/*.js', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    files: ['processors/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ioModules.filter((m) => !m.includes('*')),
          patterns: [
            { group: ['node:*'], message: 'processors are pure: no Node I/O modules' },
            {
              group: ['**/connectors/**', '**/runtime/**', '**/stack/**', '**/cli/**'],
              message: 'processors must not import I/O layers',
            },
          ],
        },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'time is an input (ctx.now)' },
        { object: 'Math', property: 'random', message: 'processors are deterministic' },
        { object: 'process', property: 'env', message: 'configuration is an input' },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: "NewExpression[callee.name='Date'][arguments.length=0]",
          message: 'time is an input (ctx.now)',
        },
        {
          selector: "CallExpression[callee.property.name='randomUUID']",
          message: 'ids are derived from inputs',
        },
      ],
    },
  },
);
