/**
 * Jest globalSetup / globalTeardown: the whole run (test workers and the action bundles, CLIs and fake services
 * they start) writes its temporary files under one folder, removed at the end, so repeated runs do not fill
 * /tmp. TMPDIR is read by os.tmpdir() in every process started after this.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

module.exports.setup = async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-test-run-'));
  process.env.MLSHIP_TEST_TMP = root;
  process.env.TMPDIR = root;
};

module.exports.teardown = async () => {
  const root = process.env.MLSHIP_TEST_TMP;
  if (root && !process.env.MLSHIP_KEEP_TEST_TMP) fs.rmSync(root, { recursive: true, force: true, maxRetries: 3 });
};
