/**
 * Source of the small Node program that owns a local training run: it starts the user's command in its own
 * process group, sends its output to train.log, enforces the maximum runtime, stops it on SIGTERM, and
 * writes status.json (temp file + rename) at every transition. Running it detached lets a local job outlive
 * the step, so `wait: false`, re-attach and cancel behave as they do in the cloud.
 *
 * It is a string, run with `node -e`, so bundlers leave its `require` calls alone and no extra file has to
 * ship next to the bundled action.
 */
export const SUPERVISOR_SOURCE = String.raw`
const fs = require('fs'), path = require('path'), cp = require('child_process');
const dir = process.argv[1];
const job = JSON.parse(fs.readFileSync(path.join(dir, 'job.json'), 'utf8'));
const statusFile = path.join(dir, 'status.json');
let status = JSON.parse(fs.readFileSync(statusFile, 'utf8'));
function save(patch) {
  status = Object.assign({}, status, patch, { pid: process.pid });
  const tmp = statusFile + '.' + process.pid + '.tmp';
  fs.writeFileSync(tmp, JSON.stringify(status));
  fs.renameSync(tmp, statusFile);
}
function tail() {
  try {
    const fd = fs.openSync(path.join(dir, 'train.log'), 'r');
    const size = fs.fstatSync(fd).size, n = Math.min(size, 4096), buf = Buffer.alloc(n);
    fs.readSync(fd, buf, 0, n, size - n);
    fs.closeSync(fd);
    const lines = buf.toString('utf8').split(/\r?\n/).filter((l) => l.trim()).slice(-5);
    return lines.length ? ': ' + lines.join(' | ') : '';
  } catch (e) { return ''; }
}
const log = fs.openSync(path.join(dir, 'train.log'), 'a');
const win = process.platform === 'win32';
const child = cp.spawn(job.command, { shell: true, cwd: job.cwd, stdio: ['ignore', log, log], detached: !win, windowsHide: true });
let stopping = false, timedOut = false;
function kill(sig) {
  try {
    if (win) cp.spawnSync('taskkill', ['/pid', String(child.pid), '/T', '/F']);
    else process.kill(-child.pid, sig);
  } catch (e) {}
}
function stop() {
  if (stopping) return;
  stopping = true;
  save({ state: 'stopping', status: 'Stopping' });
  kill('SIGTERM');
  setTimeout(() => kill('SIGKILL'), 10000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('SIGHUP', () => {});
if (job.maxRuntimeSeconds) setTimeout(() => { timedOut = true; stop(); }, job.maxRuntimeSeconds * 1000).unref();
child.on('error', (e) => {
  save({ state: 'failed', status: 'Failed', endedAt: new Date().toISOString(), failureReason: 'could not start the command: ' + e.message });
  process.exit(1);
});
save({ state: 'running', status: 'Running', startedAt: new Date().toISOString(), childPid: child.pid });
child.on('exit', (code, signal) => {
  const endedAt = new Date().toISOString();
  if (timedOut) save({ state: 'failed', status: 'Failed', endedAt, exitCode: code, failureReason: 'MaxRuntimeExceeded: the command ran longer than ' + job.maxRuntimeSeconds + ' s and was stopped' });
  else if (stopping) save({ state: 'stopped', status: 'Stopped', endedAt, exitCode: code });
  else if (code === 0) save({ state: 'completed', status: 'Completed', endedAt, exitCode: 0 });
  else save({ state: 'failed', status: 'Failed', endedAt, exitCode: code, failureReason: (signal ? 'the command was killed by ' + signal : 'the command exited with code ' + code) + tail() });
  process.exit(0);
});
`;
