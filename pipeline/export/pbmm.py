"""TensorFlow's memmapped package format (`.pbmm`): writer and reader.

Layout (reference deepspeech-0.9.md §2): tensor regions, each starting at a multiple of 64 bytes,
then the GraphDef (region `memmapped_package://.`), then a `MemmappedFileSystemDirectory` proto,
then the directory offset as u64 little-endian. Const nodes of POD dtype whose tensor is at least
`min_bytes` become `ImmutableConst` nodes naming their region.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.faults import crashpoint
from pipeline.fsutil import atomic_write

ALIGNMENT = 64
MIN_CONVERSION_BYTES = 10000
PREFIX = "memmapped_package://"
GRAPH_REGION = PREFIX + "."


def _region_name(node_name: str, used: set[str]) -> str:
    name = PREFIX + re.sub(r"[^A-Za-z0-9_.]", "_", node_name)
    while name in used:
        name += "_"
    used.add(name)
    return name


def convert_graph(graph_def: Any, min_bytes: int = MIN_CONVERSION_BYTES
                  ) -> tuple[Any, list[tuple[str, bytes]]]:
    """Return (graph with ImmutableConst nodes, [(region name, raw bytes)]) without writing."""
    import tensorflow as tf

    gd = tf.compat.v1.GraphDef()
    gd.CopyFrom(graph_def)
    regions: list[tuple[str, bytes]] = []
    used: set[str] = set()
    for node in gd.node:
        if node.op != "Const":
            continue
        tensor = node.attr["value"].tensor
        dtype = tf.dtypes.as_dtype(node.attr["dtype"].type)
        if dtype == tf.string or not dtype.is_numpy_compatible:
            continue
        arr = tf.make_ndarray(tensor)
        raw = np.ascontiguousarray(arr).tobytes()
        if len(raw) < min_bytes:
            continue
        name = _region_name(node.name, used)
        regions.append((name, raw))
        shape = tensor.tensor_shape
        dtype_enum = node.attr["dtype"].type
        node.op = "ImmutableConst"
        node.ClearField("attr")
        node.attr["dtype"].type = dtype_enum
        node.attr["shape"].shape.CopyFrom(shape)
        node.attr["memory_region_name"].s = name.encode()
    return gd, regions


def write_pbmm(graph_def: Any, path: Path, min_bytes: int = MIN_CONVERSION_BYTES) -> int:
    """Write `graph_def` as a memmapped package at `path`; return the number of converted nodes."""
    from tensorflow.core.util import memmapped_file_system_pb2 as mfs

    gd, regions = convert_graph(graph_def, min_bytes)
    directory = mfs.MemmappedFileSystemDirectory()
    with atomic_write(path, "wb", encoding=None) as f:
        pos = 0
        for name, raw in regions:
            pad = (-pos) % ALIGNMENT
            f.write(b"\0" * pad)
            pos += pad
            el = directory.element.add()
            el.offset, el.name, el.length = pos, name, len(raw)
            f.write(raw)
            pos += len(raw)
        crashpoint("export.pbmm")  # weight regions in the temp file, graph not yet
        graph_bytes = gd.SerializeToString(deterministic=True)  # attr maps in key order
        el = directory.element.add()
        el.offset, el.name, el.length = pos, GRAPH_REGION, len(graph_bytes)
        f.write(graph_bytes)
        pos += len(graph_bytes)
        f.write(directory.SerializeToString(deterministic=True))
        f.write(struct.pack("<Q", pos))
    return len(regions)


def read_directory(path: Path) -> tuple[bytes, list[tuple[str, int, int]]]:
    """Return (file bytes, [(region name, offset, length)]) in file order, validated."""
    from tensorflow.core.util import memmapped_file_system_pb2 as mfs

    data = Path(path).read_bytes()
    if len(data) <= 8:
        raise ValueError(f"{path}: too short to be a memmapped package")
    (dir_offset,) = struct.unpack("<Q", data[-8:])
    if dir_offset > len(data) - 8:
        raise ValueError(f"{path}: directory offset {dir_offset} beyond the end of the file")
    directory = mfs.MemmappedFileSystemDirectory()
    directory.ParseFromString(data[dir_offset:-8])
    out = []
    els = list(directory.element)
    for k, el in enumerate(els):
        end = els[k + 1].offset if k + 1 < len(els) else dir_offset
        if end < el.offset:
            raise ValueError(f"{path}: region offsets are not increasing at {el.name}")
        out.append((el.name, el.offset, end - el.offset))
    if len({n for n, _, _ in out}) != len(out):
        raise ValueError(f"{path}: duplicate region names")
    return data, out


def read_pbmm(path: Path) -> Any:
    """Reconstitute the plain GraphDef (ImmutableConst -> Const with the region's bytes)."""
    import tensorflow as tf

    data, regions = read_directory(path)
    by_name = {n: (o, ln) for n, o, ln in regions}
    if GRAPH_REGION not in by_name:
        raise ValueError(f"{path}: no {GRAPH_REGION} region")
    o, ln = by_name[GRAPH_REGION]
    gd = tf.compat.v1.GraphDef()
    gd.ParseFromString(data[o:o + ln])
    for node in gd.node:
        if node.op != "ImmutableConst":
            continue
        region = node.attr["memory_region_name"].s.decode()
        o, _ = by_name[region]
        dtype = tf.dtypes.as_dtype(node.attr["dtype"].type)
        shape = [d.size for d in node.attr["shape"].shape.dim]
        nbytes = int(np.prod(shape)) * dtype.size
        arr = np.frombuffer(data, dtype=dtype.as_numpy_dtype, count=nbytes // dtype.size,
                            offset=o).reshape(shape)
        dtype_enum = node.attr["dtype"].type
        node.op = "Const"
        node.ClearField("attr")
        node.attr["dtype"].type = dtype_enum
        node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(arr, dtype=dtype, shape=shape))
    return gd
