#!/usr/bin/env node
// `npm test`: installs what the tests need (npm packages when missing, Debian packages through
// scripts/setup-test-deps.sh, the Python test environment through scripts/setup-python-env.sh), then type-checks, lints and runs the whole jest suite.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const run = (cmd, args, env = {}) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

if (!fs.existsSync(path.join(root, 'node_modules', '.package-lock.json'))) run('npm', ['install', '--no-audit', '--no-fund']);
run('bash', [path.join(root, 'scripts', 'setup-test-deps.sh')]);
run('bash', [path.join(root, 'scripts', 'setup-python-env.sh')]);
run('npx', ['tsc', '-p', 'tsconfig.json']);
run('npx', ['eslint', '.']);
run('npx', ['jest', ...process.argv.slice(2)]);
