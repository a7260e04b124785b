#!/usr/bin/env python3
"""Export a PyTorch model to ONNX for mlship's export-onnx step, and save PyTorch's reference outputs.

Usage: export_onnx.py CONFIG.json

The step (Node) writes CONFIG.json and verifies everything this script produces with ONNX Runtime; this script
only does what needs PyTorch or the `onnx` package: load the model, export it, stamp provenance into
metadata_props, compute reference outputs, and optionally build an FP16 variant.

Everything goes into config["workDir"]:
  model.onnx, model.fp16.onnx (optional), reference/index.json + reference/*.npy, result.json.
An expected failure writes error.json ({"kind", "message", "hint"}) and exits with status 2; the traceback goes to
stderr so the step can show its last lines.
"""
import importlib
import inspect
import os
import re
import sys
import warnings

# The modules beside this script first, even under PYTHONSAFEPATH (which leaves the script's folder off sys.path), and
# imported before load_model puts the user's source folders in front, so a user module cannot shadow them.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mlship_script import ScriptFailure, first_line, log, main, save_model, stamp, write_json  # noqa: E402


def import_frameworks():
    try:
        import numpy  # noqa: F401
        import torch  # noqa: F401
        import onnx  # noqa: F401
    except ImportError as e:
        raise ScriptFailure(
            "python-environment",
            f"{sys.executable} cannot import {e.name}: {e}",
            "Install PyTorch, numpy and onnx for this interpreter (Debian: apt-get install python3-torch python3-onnx; "
            "pip: pip install torch onnx), or point the python input at an interpreter that has them.",
        )


# ---------------------------------------------------------------------------------------------------------------
# Loading the model


def load_model(cfg):
    import torch

    for d in reversed(cfg.get("sourceDirs") or []):
        if d not in sys.path:
            sys.path.insert(0, d)
    if cfg.get("torchscript"):
        path = cfg["torchscript"]
        log(f"loading TorchScript {path}")
        try:
            model = torch.jit.load(path, map_location="cpu")
        except Exception as e:  # torch raises RuntimeError with its own explanation
            raise ScriptFailure("load", f"Could not load TorchScript file {path}: {first_line(e)}", "Save it with torch.jit.save(torch.jit.script(model) or torch.jit.trace(model, x), path).")
        model.eval()
        return model, f"torchscript:{os.path.basename(path)}"

    factory = cfg["factory"]
    module_name, _, function_name = factory.partition(":")
    log(f"building model with {factory}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ScriptFailure(
            "factory",
            f"Could not import module '{module_name}' of model-factory '{factory}': {e}",
            f"The module must be importable from {', '.join(cfg.get('sourceDirs') or [])}; set source-dir to the folder that holds {module_name.replace('.', '/')}.py.",
        )
    fn = getattr(module, function_name, None)
    if not callable(fn):
        raise ScriptFailure("factory", f"Module '{module_name}' has no function '{function_name}' (model-factory '{factory}').", "Use module:function, where function() returns the torch.nn.Module.")
    model = fn()
    if not isinstance(model, torch.nn.Module):
        raise ScriptFailure("factory", f"{factory}() returned {type(model).__name__}, not a torch.nn.Module.", "Return the model instance from the factory function.")

    if cfg.get("checkpoint"):
        load_checkpoint(model, cfg["checkpoint"])
    model.eval()
    return model, factory


def load_checkpoint(model, path):
    import torch

    log(f"loading checkpoint {path}")
    try:
        state = torch.load(path, map_location="cpu")
    except Exception as e:
        raise ScriptFailure("checkpoint", f"Could not read checkpoint {path}: {first_line(e)}", "Save the checkpoint with torch.save(model.state_dict(), path).")
    if isinstance(state, torch.nn.Module):
        state = state.state_dict()
    if isinstance(state, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict):
        raise ScriptFailure("checkpoint", f"Checkpoint {path} holds a {type(state).__name__}, not a state dict.", "Save the checkpoint with torch.save(model.state_dict(), path).")
    # Checkpoints saved from DataParallel/DistributedDataParallel prefix every key with "module.".
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        parts = []
        if result.missing_keys:
            parts.append(f"{len(result.missing_keys)} missing (e.g. {', '.join(result.missing_keys[:3])})")
        if result.unexpected_keys:
            parts.append(f"{len(result.unexpected_keys)} unexpected (e.g. {', '.join(result.unexpected_keys[:3])})")
        raise ScriptFailure(
            "checkpoint",
            f"Checkpoint {path} does not match the model: {'; '.join(parts)} keys.",
            "Use the checkpoint that was trained with this model definition, or the model-factory that built it.",
        )


# ---------------------------------------------------------------------------------------------------------------
# Inputs and outputs


def make_input(shape, dtype, seed):
    import torch

    g = torch.Generator().manual_seed(seed)
    if dtype in ("float32", "float16"):
        x = torch.randn(shape, generator=g, dtype=torch.float32)
        return x.to(torch.float16) if dtype == "float16" else x
    if dtype == "uint8":
        return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    if dtype == "int64":
        return torch.randint(0, 10, shape, generator=g, dtype=torch.int64)
    raise ScriptFailure("input", f"Unsupported input dtype {dtype}.", "Use float32, float16, uint8 or int64.")


def flatten_outputs(out):
    """Model outputs in the order torch.onnx.export flattens them."""
    import torch

    if isinstance(out, torch.Tensor):
        return [out], None
    if isinstance(out, dict):
        tensors, names = [], []
        for k, v in out.items():
            sub, _ = flatten_outputs(v)
            tensors += sub
            names += [str(k)] if len(sub) == 1 else [f"{k}_{i}" for i in range(len(sub))]
        return tensors, names
    if isinstance(out, (list, tuple)):
        tensors = []
        for v in out:
            tensors += flatten_outputs(v)[0]
        return tensors, None
    raise ScriptFailure("output", f"The model returned {type(out).__name__}; only tensors, tuples, lists and dicts of tensors can be exported.", "Return tensors from forward().")


def run_torch(model, x):
    import torch

    with torch.no_grad():
        out = model(x)
    tensors, _ = flatten_outputs(out)
    return [t.detach().cpu().numpy() for t in tensors]


# ---------------------------------------------------------------------------------------------------------------
# Export


def choose_exporter(cfg):
    """The exporter to use and its opset: torch's own default for `auto` (dynamo from torch 2.9 on), except that a
    TorchScript file goes through the TorchScript exporter, which is what it was made for."""
    import torch

    params = inspect.signature(torch.onnx.export).parameters
    has_dynamo = "dynamo" in params
    wanted = cfg.get("exporter") or "auto"
    if wanted == "auto":
        if cfg.get("torchscript") or not has_dynamo:
            exporter = "torchscript"
        else:
            exporter = "dynamo" if params["dynamo"].default is True else "torchscript"
    else:
        exporter = wanted
    if exporter == "dynamo":
        if not has_dynamo:
            raise ScriptFailure("exporter", f"exporter is dynamo, but torch {torch.__version__} has no dynamo-based ONNX exporter (torch.onnx.export(dynamo=True) needs torch 2.5 or later).", "Set exporter to torchscript (or auto), or upgrade torch.")
        try:
            import onnxscript  # noqa: F401
        except ImportError:
            raise ScriptFailure("python-environment", f"The dynamo exporter needs onnxscript, which {sys.executable} cannot import.", "pip install onnxscript for this interpreter, or set exporter to torchscript.")
    opset = cfg.get("opset")
    if opset is None:
        # Dynamo translates natively at opset 18 (torchlib's opset; any other is a version conversion after the
        # fact). The TorchScript exporter keeps 17, the highest torch 1.13 reached, so older runtimes load it.
        opset = 18 if exporter == "dynamo" else 17
    opset = int(opset)
    if exporter == "dynamo" and opset < 18:
        raise ScriptFailure("opset", f"opset is {opset}, but the dynamo exporter emits opset 18 or later.", "Set opset to 18 or higher, or set exporter to torchscript for older opsets.")
    return exporter, opset


def export(model, cfg, example, output_names, path, exporter, opset):
    import torch

    spec = cfg["input"]
    dynamic = {int(k): v for k, v in (spec.get("dynamicAxes") or {}).items()}
    log(f"torch.onnx.export ({exporter} exporter) opset {opset}, input {spec['name']} {list(example.shape)} {spec['dtype']}" + (f", dynamic axes {dynamic}" if dynamic else ""))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if exporter == "dynamo":
                # Dim.DYNAMIC lets torch.export derive the constraints the model puts on a size (a U-Net's
                # multiple of 32) instead of failing on a named Dim; the symbols are renamed after export.
                shapes = ({axis: torch.export.Dim.DYNAMIC for axis in dynamic},) if dynamic else None
                torch.onnx.export(
                    model,
                    (example,),
                    path,
                    dynamo=True,
                    input_names=[spec["name"]],
                    output_names=output_names,
                    opset_version=opset,
                    dynamic_shapes=shapes,
                    external_data=False,
                    verbose=False,
                )
            else:
                kwargs = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
                torch.onnx.export(
                    model,
                    (example,),
                    path,
                    input_names=[spec["name"]],
                    output_names=output_names,
                    opset_version=opset,
                    dynamic_axes={spec["name"]: dynamic} if dynamic else None,
                    do_constant_folding=True,
                    **kwargs,
                )
        except ScriptFailure:
            raise
        except Exception as e:
            raise (explain_dynamo_error(e) if exporter == "dynamo" else explain_export_error(e, opset))
    if exporter == "dynamo" and dynamic:
        rename_dynamic_dims(path, spec["name"], dynamic)
    notes = []
    for w in caught:
        text = f"{w.category.__name__}: {str(w.message).strip().splitlines()[0]}"
        if text not in notes:
            notes.append(text)
    return notes


def rename_dynamic_dims(path, input_name, dynamic):
    """torch.export names dynamic sizes s0, s1, ...; give them the names of dynamic-axes everywhere they occur."""
    import onnx

    model = onnx.load(path)
    graph_input = next((i for i in model.graph.input if i.name == input_name), None)
    if graph_input is None:
        return
    dims = graph_input.type.tensor_type.shape.dim
    names = {}
    for axis, name in dynamic.items():
        if axis < len(dims) and dims[axis].dim_param:
            names[dims[axis].dim_param] = name
    if not names:
        return
    for vi in list(model.graph.input) + list(model.graph.output) + list(model.graph.value_info):
        if vi.type.HasField("tensor_type"):
            for d in vi.type.tensor_type.shape.dim:
                if d.dim_param in names:
                    d.dim_param = names[d.dim_param]
    tmp = path + ".tmp"
    onnx.save(model, tmp)
    os.replace(tmp, path)


def error_chain(error):
    seen = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def explain_dynamo_error(error):
    """The dynamo exporter fails in one of three steps (capture, decompose, translate); name the op or the line."""
    chain = error_chain(error)
    text = "\n".join(str(e) for e in chain)
    missing = re.search(r"No ONNX function found for <OpOverload\(op='([\w.]+)', overload='(\w+)'\)>", text)
    if missing:
        op = missing.group(1).replace(".", "::", 1)
        return ScriptFailure(
            "unsupported-operator",
            f"The dynamo exporter has no ONNX translation for operator {op} ({missing.group(2)} overload).",
            "Set exporter to torchscript (it exports the operator if torch.onnx has a symbolic for it, or one registered with "
            "torch.onnx.register_custom_op_symbolic), or give the dynamo exporter a translation with "
            "torch.onnx.export(..., custom_translation_table={op: onnxscript_function}).",
        )
    capture = next((e for e in chain if type(e).__name__ == "TorchExportError"), None)
    if capture is not None:
        summary = re.search(r"## Exception summary\s*\n\s*\n?(.+)", str(capture))
        cause = summary.group(1).strip().splitlines()[0] if summary else first_line(chain[-1])
        cause = re.sub(r"^<class '([\w.]+)'>", lambda m: m.group(1).rsplit(".", 1)[-1], cause)
        where = re.search(r'The following call raised this error:\s*\n\s*File "([^"]+)", line (\d+), in (\w+)\s*\n\s*(.+)', str(capture))
        caused = re.search(r"Caused by: \(([^)]+)\)", str(capture))
        location = f" at {where.group(1)}:{where.group(2)} in {where.group(3)}: {where.group(4).strip()}" if where else f" in {caused.group(1)}" if caused else ""
        return ScriptFailure(
            "export",
            f"torch.export could not capture the model (dynamo exporter, step 1 of 3){location}: {cause}",
            "Set exporter to torchscript: it traces the model with the example input, so data-dependent Python control flow "
            "(loops over detections, int() of a tensor) is recorded for that input instead of refused. Or rewrite that line for torch.export "
            "(torch.cond, torch._check, guard_or_false).",
        )
    last = chain[-1]
    return ScriptFailure(
        "export",
        f"The dynamo exporter failed: {type(last).__name__}: {first_line(last)}",
        "Read the traceback above; set exporter to torchscript to try the TorchScript exporter instead.",
    )


def explain_export_error(error, opset):
    import torch

    message = str(error).strip()
    match = re.search(r"operator '([\w:.]+)'", message)
    dynamo_note = " The dynamo exporter (exporter: dynamo) may translate it: it covers more operators." if "dynamo" in inspect.signature(torch.onnx.export).parameters else ""
    if type(error).__name__ == "UnsupportedOperatorError" or (match and "not supported" in message):
        op = match.group(1) if match else "?"
        max_opset = max_supported_opset()
        lowest = lowest_opset_supporting(op, opset, max_opset)
        if lowest is not None:
            hint = f"{op} can be exported from opset {lowest} on (this torch {torch.__version__} exports up to opset {max_opset}): set opset to {lowest} or higher, if the device's ONNX Runtime supports it."
        else:
            hint = (
                f"No opset up to {max_opset} (the highest this torch {torch.__version__} exports) has {op}. Replace it in the model with "
                f"exportable operations, or register a custom symbolic with torch.onnx.register_custom_op_symbolic."
            )
        return ScriptFailure("unsupported-operator", f"torch.onnx.export cannot export operator {op} at opset {opset}: {message.splitlines()[0]}", hint + dynamo_note)
    return ScriptFailure("export", f"torch.onnx.export failed: {type(error).__name__}: {first_line(error)}", "Read the traceback above; data-dependent Python control flow and in-place ops on inputs are common causes." + dynamo_note)


def max_supported_opset():
    try:
        from torch.onnx import _constants

        return int(_constants.ONNX_MAX_OPSET)
    except Exception:
        return 17


def lowest_opset_supporting(op, current, max_opset):
    try:
        from torch.onnx._internal import registration
    except ImportError:
        return None
    for version in range(current + 1, max_opset + 1):
        if registration.registry.is_registered_op(op, version):
            return version
    return None


def stamp_metadata(path, provenance):
    import onnx

    model = onnx.load(path)
    stamp(model, provenance)
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        raise ScriptFailure("invalid-model", f"The exported graph does not pass onnx.checker: {first_line(e)}", "Try another opset, or report the operator that produced the invalid node.")
    save_model(model, path)
    return model


# ---------------------------------------------------------------------------------------------------------------
# FP16 variant: onnxconverter-common's converter, shared with optimize-model (optimize_model.py beside this file).
# Graph inputs and outputs stay FP32, so the device code and the parity check feed the same tensors.


def convert_to_fp16(src_path, dst_path, provenance):
    import onnx

    # Imported here, not at the top: an export without fp16 then needs only mlship_script.py beside this script.
    from optimize_model import convert_fp16

    half, stats = convert_fp16(onnx.load(src_path), keep_io_types=True)
    stamp(half, {**provenance, "mlship.variant": "fp16"})
    onnx.checker.check_model(half)
    save_model(half, dst_path)
    return stats


# ---------------------------------------------------------------------------------------------------------------


def alternate_shapes(shape, dynamic_axes):
    """Two other input shapes that exercise every dynamic axis; spatial sizes keep the stride the base size has."""
    if not dynamic_axes:
        return []
    shapes = []
    for k in (1, 2):
        s = list(shape)
        for axis in dynamic_axes:
            base = shape[axis]
            if axis == 0:
                s[axis] = base + k
            else:
                step = min(base & -base, 32) if base > 0 else 1
                s[axis] = base + k * step
        shapes.append(s)
    return shapes


def run(cfg):
    import_frameworks()
    import numpy as np
    import onnx
    import torch

    torch.manual_seed(cfg.get("seed", 0))
    work = cfg["workDir"]
    ref_dir = os.path.join(work, "reference")
    os.makedirs(ref_dir, exist_ok=True)
    log(f"python {sys.version.split()[0]}, torch {torch.__version__}, onnx {onnx.__version__}, numpy {np.__version__}")

    model, source = load_model(cfg)
    spec = cfg["input"]
    shape = [int(d) for d in spec["shape"]]
    seed = int(cfg.get("seed", 0))
    example = make_input(shape, spec["dtype"], seed)

    try:
        outputs = run_torch(model, example)
    except ScriptFailure:
        raise
    except Exception as e:
        raise ScriptFailure("forward", f"The model's forward pass failed on an input of shape {shape} ({spec['dtype']}): {type(e).__name__}: {first_line(e)}", "Check input-shape and input-dtype against what the model expects.")
    with torch.no_grad():
        _, dict_names = flatten_outputs(model(example))
    output_names = cfg.get("outputNames") or dict_names or (["output"] if len(outputs) == 1 else [f"output_{i}" for i in range(len(outputs))])
    if len(output_names) != len(outputs):
        raise ScriptFailure("output", f"output-names lists {len(output_names)} names ({', '.join(output_names)}) but the model returns {len(outputs)} tensors.", "Give one name per returned tensor, in order.")

    model_path = os.path.join(work, "model.onnx")
    exporter, opset = choose_exporter(cfg)
    notes = export(model, cfg, example, output_names, model_path, exporter, opset)
    for note in notes:
        log(f"warning: {note}")

    provenance = dict(cfg.get("provenance") or {})
    provenance["mlship.source"] = source
    provenance["mlship.exporter"] = f"mlship export-onnx; torch {torch.__version__} ({exporter} exporter, opset {opset}); onnx {onnx.__version__}"
    stamp_metadata(model_path, provenance)
    log(f"wrote {model_path} ({os.path.getsize(model_path)} bytes)")

    # Reference outputs: seeded random inputs at the example shape, two other shapes per dynamic axis, samples.
    cases = []

    def save_case(name, x):
        idx = len(cases)
        in_file = f"case{idx}_input.npy"
        np.save(os.path.join(ref_dir, in_file), x.cpu().numpy())
        try:
            outs = run_torch(model, x)
        except Exception as e:
            raise ScriptFailure("forward", f"The model's forward pass failed for reference case {name} (input shape {list(x.shape)}): {type(e).__name__}: {first_line(e)}", "A dynamic axis the model cannot take at other sizes should not be declared dynamic.")
        out_files = {}
        for j, (oname, value) in enumerate(zip(output_names, outs)):
            f = f"case{idx}_output{j}.npy"
            np.save(os.path.join(ref_dir, f), value)
            out_files[oname] = f
        cases.append({"name": name, "inputs": {spec["name"]: in_file}, "outputs": out_files})

    for i in range(int(cfg.get("parityInputs", 3))):
        save_case(f"random-{i}", make_input(shape, spec["dtype"], seed + i))
    dynamic_axes = sorted(int(k) for k in (spec.get("dynamicAxes") or {}))
    for k, alt in enumerate(alternate_shapes(shape, dynamic_axes)):
        save_case(f"dynamic-{'x'.join(map(str, alt))}", make_input(alt, spec["dtype"], seed + 1000 + k))
    for sample in cfg.get("samples") or []:
        x = torch.from_numpy(np.load(sample["file"]))
        save_case(f"sample-{sample['name']}", x)
    write_json(os.path.join(ref_dir, "index.json"), {"format": "mlship-reference/1", "inputs": [spec["name"]], "outputs": output_names, "cases": cases})
    log(f"saved {len(cases)} reference cases")

    fp16 = None
    if cfg.get("fp16"):
        fp16_path = os.path.join(work, "model.fp16.onnx")
        stats = convert_to_fp16(model_path, fp16_path, provenance)
        log(f"wrote FP16 variant {fp16_path}: {stats['convertedNodes']} nodes in FP16, {stats['keptNodes']} kept in FP32, {stats['clampedValues']} weights clamped to ±65504, {stats['flushedToZero']} flushed to zero")
        fp16 = {"path": fp16_path, **stats}

    write_json(
        os.path.join(work, "result.json"),
        {
            "modelPath": model_path,
            "outputNames": output_names,
            "torchVersion": torch.__version__,
            "exporter": exporter,
            "opset": opset,
            "onnxVersion": onnx.__version__,
            "warnings": notes,
            "cases": len(cases),
            "fp16": fp16,
        },
    )


if __name__ == "__main__":
    main(run)
