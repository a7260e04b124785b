import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { repoPath } from '../../support/paths';
import { requirePython } from '../../support/python-env';

/**
 * shared/onnx/python: the helpers both step scripts import from mlship_script.py (the protocol with the Node
 * runner and the atomic writes), and the scripts' pure helpers, run in the pinned Python environment. The
 * scripts' real work (export, FP16, INT8) is tested through the steps in test/steps/export-onnx and
 * test/steps/optimize-model.
 */

const python = requirePython(['onnx']);
const SCRIPTS = repoPath('shared', 'onnx', 'python');

/** Runs a Python snippet with the scripts' folder first on sys.path, as it is when the runner starts a script. */
function py(code: string, args: string[] = []) {
  const prelude = `import sys; sys.path.insert(0, ${JSON.stringify(SCRIPTS)})\n`;
  return spawnSync(python, ['-c', prelude + code, ...args], {
    encoding: 'utf8',
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
    timeout: 120_000,
  });
}

/** The snippet's last stdout line as JSON: what it printed for the test to check. */
function pyJson(code: string): unknown {
  const r = py(code);
  if (r.status !== 0) throw new Error(`python exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

function workDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-script-'));
}

/** A script run through mlship_script.main on a CONFIG.json in a fresh work folder. */
function runMain(body: string) {
  const work = workDir();
  const config = path.join(work, 'config.json');
  fs.writeFileSync(config, JSON.stringify({ workDir: work, value: 42 }));
  const r = py(`from mlship_script import *\n${body}\nmain(run)`, [config]);
  return { ...r, work };
}

describe('mlship_script.main: the protocol with python-runner.ts', () => {
  it('writes error.json and exits 2 on a ScriptFailure, with the traceback on stderr', () => {
    const r = runMain(`def run(cfg):\n    raise ScriptFailure("checkpoint", f"bad checkpoint {cfg['value']}", "Save a state dict.")`);
    expect(r.status).toBe(2);
    expect(JSON.parse(fs.readFileSync(path.join(r.work, 'error.json'), 'utf8'))).toEqual({
      kind: 'checkpoint',
      message: 'bad checkpoint 42',
      hint: 'Save a state dict.',
    });
    expect(r.stderr).toContain('Traceback');
    expect(r.stderr).toContain('ScriptFailure: bad checkpoint 42');
  });

  it('writes a null hint when the failure has none', () => {
    const r = runMain(`def run(cfg):\n    raise ScriptFailure("model", "no model")`);
    expect(r.status).toBe(2);
    expect(JSON.parse(fs.readFileSync(path.join(r.work, 'error.json'), 'utf8'))).toEqual({
      kind: 'model',
      message: 'no model',
      hint: null,
    });
  });

  it('exits 0 when run returns, with what run wrote and no error.json', () => {
    const r = runMain(
      `import os\ndef run(cfg):\n    log("working")\n    write_json(os.path.join(cfg["workDir"], "result.json"), {"value": cfg["value"]})`,
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('working\n');
    expect(JSON.parse(fs.readFileSync(path.join(r.work, 'result.json'), 'utf8'))).toEqual({ value: 42 });
    expect(fs.existsSync(path.join(r.work, 'error.json'))).toBe(false);
  });

  it('lets any other exception crash the script (exit 1, no error.json), which the runner reports as a crash', () => {
    const r = runMain(`def run(cfg):\n    raise KeyError("workDir")`);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("KeyError: 'workDir'");
    expect(fs.existsSync(path.join(r.work, 'error.json'))).toBe(false);
  });
});

describe('mlship_script helpers', () => {
  it('first_line keeps the first line of a message, or names the type of an exception without one', () => {
    expect(
      pyJson(
        `import json\nfrom mlship_script import first_line\nprint(json.dumps([first_line(ValueError("  shape mismatch\\n  at node 3")), first_line(RuntimeError())]))`,
      ),
    ).toEqual(['shape mismatch', 'RuntimeError']);
  });

  it('write_json replaces the file whole and leaves no temporary file', () => {
    const work = workDir();
    const file = path.join(work, 'result.json');
    fs.writeFileSync(file, '{"old": true}');
    const r = py(`from mlship_script import write_json\nwrite_json(${JSON.stringify(file)}, {"modelPath": "m.onnx", "cases": 3})`);
    expect(r.status).toBe(0);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({ modelPath: 'm.onnx', cases: 3 });
    expect(fs.readdirSync(work)).toEqual(['result.json']);
  });

  it('stamp sets metadata in place: replaces a key, adds new ones, and skips empty values', () => {
    const props = pyJson(`
import json, onnx
from mlship_script import stamp
m = onnx.ModelProto()
p = m.metadata_props.add(); p.key = "mlship.version"; p.value = "1.0.0"
p = m.metadata_props.add(); p.key = "author"; p.value = "lab"
stamp(m, {"mlship.version": "1.1.0", "mlship.git_commit": None, "mlship.training_job": "", "mlship.opset": 17})
print(json.dumps([[p.key, p.value] for p in m.metadata_props]))`);
    expect(props).toEqual([
      ['mlship.version', '1.1.0'],
      ['author', 'lab'],
      ['mlship.opset', '17'],
    ]);
  });

  it('save_model writes a model onnx loads back, by rename', () => {
    const work = workDir();
    const file = path.join(work, 'model.onnx');
    const loaded = pyJson(`
import json, onnx
from mlship_script import save_model, stamp
m = onnx.ModelProto(ir_version=8, producer_name="test")
stamp(m, {"mlship.variant": "fp16"})
save_model(m, ${JSON.stringify(file)})
back = onnx.load(${JSON.stringify(file)})
print(json.dumps([back.producer_name, back.metadata_props[0].value]))`);
    expect(loaded).toEqual(['test', 'fp16']);
    expect(fs.readdirSync(work)).toEqual(['model.onnx']);
  });
});

describe("the scripts' pure helpers", () => {
  it('export_onnx.alternate_shapes grows every dynamic axis twice, keeping the stride of spatial sizes', () => {
    expect(
      pyJson(
        `import json\nfrom export_onnx import alternate_shapes\nprint(json.dumps([alternate_shapes([1, 3, 64, 48], [0, 2, 3]), alternate_shapes([1, 3, 64, 64], [])]))`,
      ),
    ).toEqual([
      [
        [2, 3, 96, 64],
        [3, 3, 128, 80],
      ],
      [],
    ]);
  });

  it('optimize_model.require turns a missing package into a python-environment failure with the pip command', () => {
    const failure = pyJson(`
import json
from optimize_model import require
from mlship_script import ScriptFailure
try:
    require("mlship_no_such_module", "mlship-no-such-package")
except ScriptFailure as f:
    print(json.dumps([f.kind, f.hint]))`);
    expect(failure).toEqual([
      'python-environment',
      'pip install mlship-no-such-package for this interpreter, or point the python input at one that has it.',
    ]);
  });

  it('both scripts use the one ScriptFailure, so a failure in the FP16 conversion export_onnx imports is its own', () => {
    expect(
      pyJson(`import json, export_onnx, optimize_model, mlship_script
print(json.dumps([export_onnx.ScriptFailure is mlship_script.ScriptFailure, optimize_model.ScriptFailure is mlship_script.ScriptFailure]))`),
    ).toEqual([true, true]);
  });
});
