"""What mlship's Python step scripts (export_onnx.py, optimize_model.py) share: the protocol with the Node runner
(shared/onnx/python-runner.ts) and the writes it relies on.

The protocol: the script gets CONFIG.json as its only argument and writes into config["workDir"] either result.json
(exit 0) or, for an expected failure, error.json ({"kind", "message", "hint"}) with exit status 2 and the traceback on
stderr, whose last lines the step shows. Files are written to a temporary name and renamed, so the runner never reads
a half-written result or model.

The scripts import this module from their own folder (Python puts a script's folder first on sys.path), which is why
the bundles ship it beside them. Its name is prefixed with mlship so that a user's model code, which export_onnx.py
puts on sys.path, cannot shadow it.
"""
import json
import os
import sys
import traceback


def log(message):
    # Flushed at once: the runner streams these lines to the CI log while a long export runs.
    print(message, flush=True)


class ScriptFailure(Exception):
    """An expected failure: what went wrong (kind, message) and what to do about it (hint), for error.json."""

    def __init__(self, kind, message, hint=None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.hint = hint


def first_line(error):
    """The first line of an exception's text, or its type when it has none: enough for a one-line message."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def write_json(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)
    os.replace(tmp, path)


def save_model(model, path):
    import onnx

    tmp = path + ".tmp"
    onnx.save(model, tmp)
    os.replace(tmp, path)


def stamp(model, metadata):
    """Sets metadata_props entries on an ONNX ModelProto in place, replacing keys it has; empty values are skipped
    so that provenance the step does not know (no git commit, no training job) leaves no blank entries."""
    existing = {p.key: p for p in model.metadata_props}
    for key, value in metadata.items():
        if value is None or value == "":
            continue
        entry = existing.get(key) or model.metadata_props.add()
        entry.key = key
        entry.value = str(value)


def main(run, argv=None):
    """Runs run(config) on the CONFIG.json named on the command line; a ScriptFailure becomes error.json and exit 2.
    Any other exception propagates (exit 1 with its traceback), which the runner reports as a crash."""
    argv = sys.argv if argv is None else argv
    with open(argv[1], encoding="utf-8") as f:
        cfg = json.load(f)
    try:
        run(cfg)
    except ScriptFailure as failure:
        traceback.print_exc()
        write_json(os.path.join(cfg["workDir"], "error.json"), {"kind": failure.kind, "message": failure.message, "hint": failure.hint})
        sys.exit(2)
