#!/usr/bin/env python3
"""Build FP16 and INT8 variants of an ONNX model for mlship's optimize-model step (and FP16 for export-onnx).

Usage: optimize_model.py CONFIG.json

The step (Node) prepares the calibration tensors with the package's preprocessing spec, writes CONFIG.json, and
measures every variant in ONNX Runtime itself; this script only does what needs the Python tools:
  FP16: onnxconverter-common's float16 conversion (convert_float_to_float16);
  INT8: ONNX Runtime's static post-training quantization, QDQ format, per-channel weights, calibrated on the
        prepared tensors with MinMax, Entropy or Percentile.
Every variant gets the source model's metadata plus provenance (variant, source sha256, tools, calibration).

Writes into config["workDir"]: the variants named in config["outputs"], result.json. An expected failure writes
error.json ({"kind", "message", "hint"}) and exits with status 2.
"""
import json
import os
import sys

# The module beside this script first, even under PYTHONSAFEPATH (which leaves the script's folder off sys.path).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mlship_script import ScriptFailure, first_line, log, main, save_model, stamp, write_json  # noqa: E402

FP16_MAX = 65504.0
FP16_MIN_SUBNORMAL = 2.0 ** -24


def require(module, package):
    try:
        return __import__(module)
    except ImportError:
        raise ScriptFailure("python-environment", f"{sys.executable} cannot import {module}.", f"pip install {package} for this interpreter, or point the python input at one that has it.")


# ---------------------------------------------------------------------------------------------------------------
# FP16


def convert_fp16(model, keep_io_types=True, op_block_list=None):
    """FP16 copy of an ONNX ModelProto with onnxconverter-common. Weights are clamped to the FP16 range
    (±65504, subnormals to 2^-24) rather than onnxconverter-common's 1e4 default, and counted, so the caller can say
    what the conversion cost. keep_io_types=True keeps FP32 graph inputs/outputs (Casts at the borders)."""
    import numpy as np
    from onnx import numpy_helper

    require("onnxconverter_common", "onnxconverter-common")
    from onnxconverter_common import float16

    clamped = flushed = 0
    for t in model.graph.initializer:
        if t.data_type == 1:  # FLOAT
            values = numpy_helper.to_array(t)
            clamped += int((np.abs(values) > FP16_MAX).sum())
            flushed += int(((values != 0) & (np.abs(values) < FP16_MIN_SUBNORMAL)).sum())
    block = list(float16.DEFAULT_OP_BLOCK_LIST) + list(op_block_list or [])
    kept = sum(1 for n in model.graph.node if n.op_type in block)
    total = len(model.graph.node)
    half = float16.convert_float_to_float16(model, min_positive_val=FP16_MIN_SUBNORMAL, max_finite_val=FP16_MAX, keep_io_types=keep_io_types, op_block_list=block)
    casts = sum(1 for n in half.graph.node if n.op_type == "Cast") - sum(1 for n in model.graph.node if n.op_type == "Cast")
    return half, {"convertedNodes": total - kept, "keptNodes": kept, "clampedValues": clamped, "flushedToZero": flushed, "casts": casts, "keepIoTypes": bool(keep_io_types)}


# ---------------------------------------------------------------------------------------------------------------
# INT8


class NpyReader:
    """onnxruntime.quantization CalibrationDataReader over the prepared .npy tensors, one image at a time."""

    def __init__(self, input_name, files):
        self.input_name = input_name
        self.files = list(files)
        self.position = 0

    def get_next(self):
        import numpy as np

        if self.position >= len(self.files):
            return None
        file = self.files[self.position]
        self.position += 1
        return {self.input_name: np.load(file)}

    def rewind(self):
        self.position = 0


def quantize_int8(src_path, dst_path, cfg, work):
    require("onnxruntime", "onnxruntime")
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile}
    method = cfg["method"]
    files = cfg["calibration"]
    source = src_path
    # ONNX Runtime's recommended pre-processing (symbolic shape inference, constant folding) gives the quantizer
    # the shapes it needs; a model it cannot pre-process is quantized as it is.
    prepared = os.path.join(work, "int8.preprocessed.onnx")
    try:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        quant_pre_process(src_path, prepared, skip_symbolic_shape=False)
        source = prepared
    except Exception as e:  # noqa: BLE001 - pre-processing is an optimization, its failure is reported, not fatal
        log(f"warning: quantization pre-processing skipped ({type(e).__name__}: {first_line(e)})")
    extra = {"ActivationSymmetric": False, "WeightSymmetric": True}
    if method == "percentile":
        extra["CalibPercentile"] = float(cfg.get("percentile", 99.999))
    log(f"INT8: static QDQ quantization, per-channel weights, {method} calibration on {len(files)} image(s)")
    try:
        quantize_static(
            source,
            dst_path + ".tmp",
            NpyReader(cfg["inputName"], files),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=methods[method],
            nodes_to_exclude=cfg.get("excludeNodes") or None,
            op_types_to_quantize=None,
            extra_options=extra,
        )
    except ScriptFailure:
        raise
    except Exception as e:
        raise ScriptFailure("int8", f"ONNX Runtime quantization of {src_path} failed: {type(e).__name__}: {first_line(e)}", "Read the traceback above; exclude the node it names with int8-exclude-nodes, or use the FP16 variant for this model.")
    os.replace(dst_path + ".tmp", dst_path)
    import onnx

    model = onnx.load(dst_path)
    q = sum(1 for n in model.graph.node if n.op_type == "QuantizeLinear")
    return model, {"quantizeNodes": q, "dequantizeNodes": sum(1 for n in model.graph.node if n.op_type == "DequantizeLinear"), "calibrationImages": len(files), "method": method}


# ---------------------------------------------------------------------------------------------------------------


def run(cfg):
    require("numpy", "numpy")
    onnx = require("onnx", "onnx")
    work = cfg["workDir"]
    src = cfg["model"]
    versions = {"onnx": onnx.__version__}
    try:
        source = onnx.load(src)
    except Exception as e:
        raise ScriptFailure("model", f"{src} is not an ONNX model onnx can load: {first_line(e)}", "Give the FP32 model export-onnx wrote.")
    base = {p.key: p.value for p in source.metadata_props}
    provenance = dict(cfg.get("provenance") or {})
    result = {"versions": versions, "fp16": None, "int8": None}

    out = cfg["outputs"]
    if out.get("fp16"):
        import onnxconverter_common

        versions["onnxconverter_common"] = onnxconverter_common.__version__
        f = cfg.get("fp16") or {}
        half, stats = convert_fp16(onnx.load(src), keep_io_types=f.get("keepIoTypes", True), op_block_list=f.get("opBlockList"))
        stamp(half, {**base, **provenance, "mlship.variant": "fp16", "mlship.optimizer": f"onnxconverter-common {onnxconverter_common.__version__} float16 (keep_io_types={stats['keepIoTypes']})"})
        onnx.checker.check_model(half)
        save_model(half, out["fp16"])
        log(f"FP16: {stats['convertedNodes']} nodes in FP16, {stats['keptNodes']} kept in FP32, {stats['clampedValues']} weights clamped to ±65504, {stats['flushedToZero']} flushed to zero")
        result["fp16"] = {"path": out["fp16"], **stats}
    if out.get("int8"):
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
        i = cfg["int8"]
        model, stats = quantize_int8(src, out["int8"], i, work)
        stamp(model, {**base, **provenance, "mlship.variant": "int8", "mlship.optimizer": f"onnxruntime {onnxruntime.__version__} quantize_static (QDQ, per-channel, {i['method']})", "mlship.calibration": json.dumps(i.get("summary") or {}, sort_keys=True)})
        save_model(model, out["int8"])
        log(f"INT8: {stats['quantizeNodes']} QuantizeLinear / {stats['dequantizeNodes']} DequantizeLinear nodes")
        result["int8"] = {"path": out["int8"], **stats}
    write_json(os.path.join(work, "result.json"), result)


if __name__ == "__main__":
    main(run)
