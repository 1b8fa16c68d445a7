"""Flatbuffer edits that make a TF 2.21 `.tflite` load and run in DeepSpeech 0.9.3 (TFLite 2.3)
and Coqui STT 1.4.0 (TFLite 2.9).

The client looks every output up by name, asks each output for its producing operator and runs the
metadata, MFCC and acoustic parts as separate execution plans. Fixes:
1. every name in `OUTPUT_NAMES` must be a subgraph output (a missing one becomes index -1);
2. constant outputs (the metadata) are bare buffers without a producer: give each a GATHER v1 of a
   constant at index [0] (works for int32 and string);
3. a string output is dynamic and TFLite stops preparing operators after the first dynamic one, so
   those GATHERs go LAST in the operator list;
4. hybrid-quantized FULLY_CONNECTED (per-tensor, version 9) becomes version 3 with
   `asymmetric_quantize_inputs = False` (v9 only added that option; 2.3 knows up to v8 here).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.model.geometry import OUTPUT_NAMES

# Highest op versions whose kernels TFLite 2.3 (DeepSpeech 0.9.3) registers, for the ops we emit.
TFLITE_23_MAX_VERSION = {
    "ADD": 2, "CONCATENATION": 3, "FULLY_CONNECTED": 8, "GATHER": 4, "LOGISTIC": 3, "MUL": 4,
    "MINIMUM": 4, "RESHAPE": 1, "SOFTMAX": 3, "SPLIT": 4, "TANH": 3, "PACK": 3, "DEQUANTIZE": 4,
    "SPLIT_V": 2, "STRIDED_SLICE": 4, "CUSTOM": 1,
}


def _schema() -> Any:
    from tensorflow.lite.python import schema_py_generated as schema

    return schema


def read_flatbuffer(data: bytes) -> Any:
    schema = _schema()
    return schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(data), 0))


def save_model(model: Any) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def op_name(schema: Any, code: Any) -> str:
    value = max(code.builtinCode, code.deprecatedBuiltinCode)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    if value == schema.BuiltinOperator.CUSTOM:
        return "CUSTOM:" + (code.customCode.decode() if code.customCode else "")
    return names.get(value, str(value))


def op_versions(data: bytes) -> dict[str, int]:
    """{op name: version} of every operator code in a `.tflite` (CUSTOM ops as CUSTOM:<name>)."""
    schema = _schema()
    model = read_flatbuffer(data)
    return {op_name(schema, c): c.version for c in model.operatorCodes}


def _opcode_index(schema: Any, model: Any, builtin: int, version: int) -> int:
    for i, c in enumerate(model.operatorCodes):
        if max(c.builtinCode, c.deprecatedBuiltinCode) == builtin and c.version == version:
            return i
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = builtin
    code.version = version
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _tensor_name(t: Any) -> str:
    return t.name.decode() if isinstance(t.name, bytes) else str(t.name)


def make_legacy_compatible(data: bytes, output_names: list[str] | None = None) -> bytes:
    """Apply fixes 1-4 (see module docstring) and return the new flatbuffer."""
    schema = _schema()
    names = list(output_names or OUTPUT_NAMES)
    model = read_flatbuffer(data)
    if len(model.subgraphs) != 1:
        raise ValueError(f"expected one subgraph, the converter produced {len(model.subgraphs)}")
    sg = model.subgraphs[0]
    by_name = {_tensor_name(t): i for i, t in enumerate(sg.tensors)}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"converted model lacks output tensors {missing}")
    produced = {o for op in sg.operators for o in op.outputs}

    gather = _opcode_index(schema, model, schema.BuiltinOperator.GATHER, 1)
    late_ops = []
    idx_tensor = None
    for name in names:
        ti = by_name[name]
        if ti in produced:
            continue
        t = sg.tensors[ti]
        # Move the constant data to a new tensor and make `name` the output of GATHER(const, [0]).
        const = schema.TensorT()
        const.name = (name + "/const").encode()
        const.shape = list(t.shape) if t.shape is not None else [1]
        const.type = t.type
        const.buffer = t.buffer
        sg.tensors.append(const)
        ci = len(sg.tensors) - 1
        empty = schema.BufferT()
        model.buffers.append(empty)
        t.buffer = len(model.buffers) - 1
        if idx_tensor is None:
            buf = schema.BufferT()
            buf.data = np.zeros([1], np.int32).tobytes()
            model.buffers.append(buf)
            it = schema.TensorT()
            it.name = b"metadata_gather_index"
            it.shape = [1]
            it.type = schema.TensorType.INT32
            it.buffer = len(model.buffers) - 1
            sg.tensors.append(it)
            idx_tensor = len(sg.tensors) - 1
        op = schema.OperatorT()
        op.opcodeIndex = gather
        op.inputs = [ci, idx_tensor]
        op.outputs = [ti]
        op.builtinOptionsType = schema.BuiltinOptions.GatherOptions
        opts = schema.GatherOptionsT()
        opts.axis = 0
        op.builtinOptions = opts
        late_ops.append(op)
    # Producers of dynamic (string) tensors last: TFLite stops preparing after the first one.
    sg.operators = list(sg.operators) + late_ops
    sg.outputs = [by_name[n] for n in names]

    fc = schema.BuiltinOperator.FULLY_CONNECTED
    for code in model.operatorCodes:
        if max(code.builtinCode, code.deprecatedBuiltinCode) == fc and code.version == 9:
            code.version = 3
    for op in sg.operators:
        opts = op.builtinOptions
        if isinstance(opts, schema.FullyConnectedOptionsT):
            opts.asymmetricQuantizeInputs = False
    model = _drop_unused_opcodes(model)
    return save_model(model)


def _drop_unused_opcodes(model: Any) -> Any:
    used = sorted({op.opcodeIndex for sg in model.subgraphs for op in sg.operators})
    remap = {old: new for new, old in enumerate(used)}
    model.operatorCodes = [model.operatorCodes[i] for i in used]
    for sg in model.subgraphs:
        for op in sg.operators:
            op.opcodeIndex = remap[op.opcodeIndex]
    return model


def check_versions(data: bytes) -> list[str]:
    """Ops whose version TFLite 2.3 does not register (empty list = loadable)."""
    bad = []
    for name, ver in op_versions(data).items():
        key = "CUSTOM" if name.startswith("CUSTOM:") else name
        if key not in TFLITE_23_MAX_VERSION or ver > TFLITE_23_MAX_VERSION[key]:
            bad.append(f"{name} v{ver}")
    return bad
