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
import json
import os
import re
import sys
import traceback
import warnings


def log(message):
    print(message, flush=True)


class ExportFailure(Exception):
    def __init__(self, kind, message, hint=None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.hint = hint


def write_json(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)
    os.replace(tmp, path)


def main():
    config_path = sys.argv[1]
    with open(config_path, encoding="utf-8") as f:
        cfg = json.load(f)
    work = cfg["workDir"]
    try:
        run(cfg)
    except ExportFailure as failure:
        traceback.print_exc()
        write_json(os.path.join(work, "error.json"), {"kind": failure.kind, "message": failure.message, "hint": failure.hint})
        sys.exit(2)


def import_frameworks():
    try:
        import numpy  # noqa: F401
        import torch  # noqa: F401
        import onnx  # noqa: F401
    except ImportError as e:
        raise ExportFailure(
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
            raise ExportFailure("load", f"Could not load TorchScript file {path}: {first_line(e)}", "Save it with torch.jit.save(torch.jit.script(model) or torch.jit.trace(model, x), path).")
        model.eval()
        return model, f"torchscript:{os.path.basename(path)}"

    factory = cfg["factory"]
    module_name, _, function_name = factory.partition(":")
    log(f"building model with {factory}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ExportFailure(
            "factory",
            f"Could not import module '{module_name}' of model-factory '{factory}': {e}",
            f"The module must be importable from {', '.join(cfg.get('sourceDirs') or [])}; set source-dir to the folder that holds {module_name.replace('.', '/')}.py.",
        )
    fn = getattr(module, function_name, None)
    if not callable(fn):
        raise ExportFailure("factory", f"Module '{module_name}' has no function '{function_name}' (model-factory '{factory}').", "Use module:function, where function() returns the torch.nn.Module.")
    model = fn()
    if not isinstance(model, torch.nn.Module):
        raise ExportFailure("factory", f"{factory}() returned {type(model).__name__}, not a torch.nn.Module.", "Return the model instance from the factory function.")

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
        raise ExportFailure("checkpoint", f"Could not read checkpoint {path}: {first_line(e)}", "Save the checkpoint with torch.save(model.state_dict(), path).")
    if isinstance(state, torch.nn.Module):
        state = state.state_dict()
    if isinstance(state, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict):
        raise ExportFailure("checkpoint", f"Checkpoint {path} holds a {type(state).__name__}, not a state dict.", "Save the checkpoint with torch.save(model.state_dict(), path).")
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
        raise ExportFailure(
            "checkpoint",
            f"Checkpoint {path} does not match the model: {'; '.join(parts)} keys.",
            "Use the checkpoint that was trained with this model definition, or the model-factory that built it.",
        )


def first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


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
    raise ExportFailure("input", f"Unsupported input dtype {dtype}.", "Use float32, float16, uint8 or int64.")


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
    raise ExportFailure("output", f"The model returned {type(out).__name__}; only tensors, tuples, lists and dicts of tensors can be exported.", "Return tensors from forward().")


def run_torch(model, x):
    import torch

    with torch.no_grad():
        out = model(x)
    tensors, _ = flatten_outputs(out)
    return [t.detach().cpu().numpy() for t in tensors]


# ---------------------------------------------------------------------------------------------------------------
# Export


def export(model, cfg, example, output_names, path):
    import torch

    spec = cfg["input"]
    dynamic = {int(k): v for k, v in (spec.get("dynamicAxes") or {}).items()}
    opset = cfg["opset"]
    log(f"torch.onnx.export opset {opset}, input {spec['name']} {list(example.shape)} {spec['dtype']}" + (f", dynamic axes {dynamic}" if dynamic else ""))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            torch.onnx.export(
                model,
                (example,),
                path,
                input_names=[spec["name"]],
                output_names=output_names,
                opset_version=opset,
                dynamic_axes={spec["name"]: dynamic} if dynamic else None,
                do_constant_folding=True,
            )
        except Exception as e:
            raise explain_export_error(e, opset)
    notes = []
    for w in caught:
        text = f"{w.category.__name__}: {str(w.message).strip().splitlines()[0]}"
        if text not in notes:
            notes.append(text)
    return notes


def explain_export_error(error, opset):
    import torch

    message = str(error).strip()
    match = re.search(r"operator '([\w:.]+)'", message)
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
        return ExportFailure("unsupported-operator", f"torch.onnx.export cannot export operator {op} at opset {opset}: {message.splitlines()[0]}", hint)
    return ExportFailure("export", f"torch.onnx.export failed: {type(error).__name__}: {first_line(error)}", "Read the traceback above; data-dependent Python control flow and in-place ops on inputs are common causes.")


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
    existing = {p.key: p for p in model.metadata_props}
    for key, value in provenance.items():
        if value is None or value == "":
            continue
        entry = existing.get(key) or model.metadata_props.add()
        entry.key = key
        entry.value = str(value)
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        raise ExportFailure("invalid-model", f"The exported graph does not pass onnx.checker: {first_line(e)}", "Try another opset, or report the operator that produced the invalid node.")
    tmp = path + ".tmp"
    onnx.save(model, tmp)
    os.replace(tmp, path)
    return model


# ---------------------------------------------------------------------------------------------------------------
# FP16 variant
#
# onnxconverter-common (the usual converter) is not in Debian. This converter casts a node to FP16 only when its
# op type is known to compute in its float type T; every other node stays FP32, with Cast nodes at the borders.
# Graph inputs and outputs stay FP32, so the device code and the parity check feed the same tensors.

# Op type -> indices of its float inputs of type T (None: every float input is T). Float inputs outside these
# positions (Resize's roi and scales, Upsample's scales) must stay FP32.
FP16_OPS = {
    "Add": None, "Sub": None, "Mul": None, "Div": None, "Neg": None, "Abs": None, "Sqrt": None, "Exp": None, "Erf": None,
    "Max": None, "Min": None, "Sum": None, "Relu": None, "LeakyRelu": None, "PRelu": None, "Elu": None, "Selu": None,
    "Sigmoid": None, "HardSigmoid": None, "HardSwish": None, "Tanh": None, "Softmax": None, "LogSoftmax": None,
    "Clip": None, "Conv": None, "ConvTranspose": None, "MatMul": None, "Gemm": None, "BatchNormalization": None,
    "InstanceNormalization": None, "LayerNormalization": None, "MaxPool": None, "AveragePool": None,
    "GlobalAveragePool": None, "GlobalMaxPool": None, "Concat": None, "Transpose": None, "Flatten": None,
    "Identity": None, "Reshape": [0], "Squeeze": [0], "Unsqueeze": [0], "Slice": [0], "Split": [0], "Gather": [0],
    "Pad": [0, 2], "Tile": [0], "Expand": [0], "Resize": [0], "Upsample": [0], "ReduceMean": [0], "ReduceMax": [0],
    "ReduceSum": [0], "DepthToSpace": None, "SpaceToDepth": None,
}
FP16_MAX = 65504.0
FP16_MIN_SUBNORMAL = 2.0 ** -24


def convert_to_fp16(src_path, dst_path, provenance):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper, shape_inference

    model = shape_inference.infer_shapes(onnx.load(src_path))
    graph = model.graph
    FLOAT = TensorProto.FLOAT
    types = {}
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        types[vi.name] = vi.type.tensor_type.elem_type
    initializers = {t.name: t for t in graph.initializer}
    for name, t in initializers.items():
        types[name] = t.data_type

    stats = {"convertedNodes": 0, "keptNodes": 0, "clampedValues": 0, "flushedToZero": 0, "casts": 0}
    alias = {}
    new_nodes = []
    created_casts = set()

    def fresh(base):
        stats["casts"] += 1
        return f"{base}__mlship_fp16_{stats['casts']}"

    def fp16_of(name):
        if name in alias:
            return alias[name]
        if name in initializers:
            values = numpy_helper.to_array(initializers[name]).astype(np.float64)
            over = np.abs(values) > FP16_MAX
            under = (values != 0) & (np.abs(values) < FP16_MIN_SUBNORMAL)
            stats["clampedValues"] += int(over.sum())
            stats["flushedToZero"] += int(under.sum())
            half = np.clip(values, -FP16_MAX, FP16_MAX).astype(np.float16)
            target = fresh(name)
            graph.initializer.append(numpy_helper.from_array(half, target))
        else:
            target = fresh(name)
            cast = helper.make_node("Cast", [name], [target], to=TensorProto.FLOAT16, name=target + "_cast")
            new_nodes.append(cast)
            created_casts.add(target)
        alias[name] = target
        return target

    def convertible(node):
        if node.domain not in ("", "ai.onnx") or node.op_type not in FP16_OPS:
            return False
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            return False
        return any(types.get(n) == FLOAT for n in list(node.input) + list(node.output) if n)

    for node in graph.node:
        if not convertible(node):
            new_nodes.append(node)
            stats["keptNodes"] += 1
            continue
        positions = FP16_OPS[node.op_type]
        for i, name in enumerate(node.input):
            if name and (positions is None or i in positions) and types.get(name) == FLOAT:
                node.input[i] = fp16_of(name)
        restore = []
        for j, name in enumerate(node.output):
            if name and types.get(name) == FLOAT:
                half = fresh(name)
                node.output[j] = half
                alias[name] = half
                restore.append((half, name))
        new_nodes.append(node)
        stats["convertedNodes"] += 1
        for half, name in restore:
            back = helper.make_node("Cast", [half], [name], to=FLOAT, name=half + "_back")
            new_nodes.append(back)
            created_casts.add(name)

    # Drop the FP32 cast-backs and initializers nothing reads any more.
    used = set(o.name for o in graph.output)
    for node in new_nodes:
        used.update(n for n in node.input if n)
        used.update(subgraph_inputs(node))
    kept = [n for n in new_nodes if not (n.op_type == "Cast" and n.output[0] in created_casts and n.output[0] not in used)]
    del graph.node[:]
    graph.node.extend(kept)
    used_inits = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(used_inits)

    existing = {p.key: p for p in model.metadata_props}
    for key, value in {**provenance, "mlship.variant": "fp16"}.items():
        if value is None or value == "":
            continue
        entry = existing.get(key) or model.metadata_props.add()
        entry.key = key
        entry.value = str(value)
    onnx.checker.check_model(model)
    tmp = dst_path + ".tmp"
    onnx.save(model, tmp)
    os.replace(tmp, dst_path)
    return stats


def subgraph_inputs(node):
    """Names a node's subgraphs (If/Loop/Scan bodies) read from the outer scope."""
    import onnx

    names = set()
    for attr in node.attribute:
        graphs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs) if attr.type == onnx.AttributeProto.GRAPHS else []
        for g in graphs:
            for n in g.node:
                names.update(i for i in n.input if i)
                names.update(subgraph_inputs(n))
    return names


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
    except ExportFailure:
        raise
    except Exception as e:
        raise ExportFailure("forward", f"The model's forward pass failed on an input of shape {shape} ({spec['dtype']}): {type(e).__name__}: {first_line(e)}", "Check input-shape and input-dtype against what the model expects.")
    with torch.no_grad():
        _, dict_names = flatten_outputs(model(example))
    output_names = cfg.get("outputNames") or dict_names or (["output"] if len(outputs) == 1 else [f"output_{i}" for i in range(len(outputs))])
    if len(output_names) != len(outputs):
        raise ExportFailure("output", f"output-names lists {len(output_names)} names ({', '.join(output_names)}) but the model returns {len(outputs)} tensors.", "Give one name per returned tensor, in order.")

    model_path = os.path.join(work, "model.onnx")
    notes = export(model, cfg, example, output_names, model_path)
    for note in notes:
        log(f"warning: {note}")

    provenance = dict(cfg.get("provenance") or {})
    provenance["mlship.source"] = source
    provenance["mlship.exporter"] = f"mlship export-onnx; torch {torch.__version__}; onnx {onnx.__version__}"
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
            raise ExportFailure("forward", f"The model's forward pass failed for reference case {name} (input shape {list(x.shape)}): {type(e).__name__}: {first_line(e)}", "A dynamic axis the model cannot take at other sizes should not be declared dynamic.")
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
            "onnxVersion": onnx.__version__,
            "warnings": notes,
            "cases": len(cases),
            "fp16": fp16,
        },
    )


if __name__ == "__main__":
    main()
