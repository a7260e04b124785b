#!/usr/bin/env node
// The published package runs the compiled CLI (lib/, built by `npm run build:cli` before packing). A clone of the
// repository has the TypeScript sources and runs those, transpiled on load, so there the CLI is always the code
// under review.
const fs = require('node:fs');
const path = require('node:path');

if (fs.existsSync(path.join(__dirname, '..', 'shared', 'cli', 'main.ts'))) {
  require('esbuild-register/dist/node').register({ target: 'node20' });
  require('../shared/cli/run');
} else {
  // Node 22.1+ keeps V8's compiled code of the bundle between runs (in the OS temp folder): a faster start.
  require('node:module').enableCompileCache?.();
  require('../lib/mlship.js');
}
