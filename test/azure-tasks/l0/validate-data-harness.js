// L0 harness for ValidateDataV1 (see gate-metrics-harness.js).
const path = require('node:path');
const { TaskMockRunner } = require('azure-pipelines-task-lib/mock-run');

const root = path.resolve(__dirname, '..', '..', '..');

module.exports = (inputs) => {
  const tmr = new TaskMockRunner(path.join(root, 'azure-tasks', 'ValidateDataV1', 'dist', 'index.js'));
  for (const [name, value] of Object.entries({ format: 'coco', ...inputs })) tmr.setInput(name, value);
  tmr.run(true);
};
