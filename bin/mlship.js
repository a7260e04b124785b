#!/usr/bin/env node
// Runs the TypeScript sources directly (transpiled on load), so the CLI is always the code under review.
require('esbuild-register/dist/node').register({ target: 'node20' });
require('../shared/cli/main')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  });
