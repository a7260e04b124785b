/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } }] },
  testTimeout: 120000,
  // Two workers on the 2-core CI machine: the torch and emulator suites wait on child processes much of the time.
  maxWorkers: 2,
  // One temporary folder per run, removed afterwards (MLSHIP_KEEP_TEST_TMP=1 keeps it for debugging).
  globalSetup: '<rootDir>/test/support/global-setup.js',
  globalTeardown: '<rootDir>/test/support/global-teardown.js',
  reporters: ['default', '<rootDir>/test/support/totals-reporter.js'],
};
