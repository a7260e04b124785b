#!/usr/bin/env node
// The real CLI program with the test-only echo step added, so the CLI contract can be tested without shipping it.
require('esbuild-register/dist/node').register({ target: 'node20' });
const { main } = require('../../shared/cli/main');
const { steps } = require('../../shared/steps');
const { echoStep } = require('../fixtures/echo-step');
main(process.argv.slice(2), { steps: [...steps, echoStep] }).then((code) => {
  process.exitCode = code;
});
