// L0 harness for GateMetricsV1, in the azure-pipelines-tasks style: TaskMockRunner sets the inputs as the agent
// would and runs the shipped bundle. run(true) runs the real task-lib inside the bundle (a bundled task carries its
// own copy, which the mock task-lib could not replace anyway). l0.test.ts writes one entry per case that calls this.
const path = require('node:path');
const { TaskMockRunner } = require('azure-pipelines-task-lib/mock-run');

const root = path.resolve(__dirname, '..', '..', '..');

module.exports = (inputs, options = {}) => {
  const tmr = new TaskMockRunner(path.join(root, 'azure-tasks', 'GateMetricsV1', 'dist', 'index.js'));
  for (const [name, value] of Object.entries({ bootstrapResamples: '0', maxDrop: '0.01', ...inputs })) tmr.setInput(name, value);
  // options.mockTaskLib: TaskMockRunner's default, which loads a second task-lib before the bundle's own.
  tmr.run(!options.mockTaskLib);
};
