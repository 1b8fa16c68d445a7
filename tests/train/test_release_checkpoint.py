"""A real DeepSpeech 0.9 release/cuDNN checkpoint layout (issue #15).

The fixture has exactly the variable names, shapes and dtypes of a real cuDNN-trained checkpoint:
they are read from its index (tests/data/deepspeech_smoke/kinyarwanda_best_dev-2011795.index,
listed next to an empty data file), values are random. It holds the opaque cuDNN buffer
`cudnn_lstm/opaque_kernel` and every Adam slot, which a loader must ignore, next to the canonical
`cudnn_compatible_lstm_cell` weights. Width 2048, 29 classes: the fixture is about 1 GB.

Coqui STT 1.x checkpoints use the same variable names (its `deepspeech_model.py` kept DeepSpeech's
`create_model`, the `layer_N` and `cudnn_lstm/rnn/multi_rnn_cell/cell_0/cudnn_compatible_lstm_cell`
scopes, CudnnLSTM's opaque buffer and Adam), so this covers them too; only its optional
`--layer_norm` adds variables (`layer_N/LayerNorm/...`), a model variant we do not support.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.model.geometry import DENSE_LAYERS, LSTM_BIAS, LSTM_KERNEL
from tests.helpers import REPO, run_cli

INDEX = REPO / "tests/data/deepspeech_smoke/kinyarwanda_best_dev-2011795.index"
STEP = 2011795
# The real checkpoint's alphabet order (q before p), as published with it.
KINYARWANDA_ALPHABET = "".join(f"{c}\n" for c in " abcdefghijklmnoqprstuvwxyz'")
TRANSCRIPT = "she had your dark suit in greasy wash water all year"


def real_layout(tmp: Path) -> dict[str, tuple[list[int], object]]:
    """name -> (shape, dtype) of the real checkpoint, read from its index alone."""
    import tensorflow as tf

    d = tmp / "index_only"
    d.mkdir()
    shutil.copy(INDEX, d / f"best_dev-{STEP}.index")
    (d / f"best_dev-{STEP}.data-00000-of-00001").touch()
    prefix = str(d / f"best_dev-{STEP}")
    dtypes = tf.train.load_checkpoint(prefix).get_variable_to_dtype_map()
    return {name: (shape, dtypes[name]) for name, shape in tf.train.list_variables(prefix)}


def write_release_checkpoint(directory: Path, layout: dict[str, tuple[list[int], object]],
                             seed: int = 11) -> dict[str, np.ndarray]:
    """Random values in the real layout, saved by name like a TF1 Saver (SaveV2), with the
    `best_dev_checkpoint` state file DeepSpeech writes."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    values: dict[str, np.ndarray] = {}
    for name, (shape, dtype) in sorted(layout.items()):
        if dtype == tf.int64:
            values[name] = np.array(STEP, np.int64)
        else:
            values[name] = (rng.standard_normal(shape, dtype=np.float32) * 0.05).astype(np.float32)
    directory.mkdir(parents=True)
    prefix = directory / f"best_dev-{STEP}"
    names = sorted(values)
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(values[n]) for n in names])
    (directory / "best_dev_checkpoint").write_text(
        f'model_checkpoint_path: "best_dev-{STEP}"\nall_model_checkpoint_paths: "best_dev-{STEP}"\n',
        encoding="utf-8")
    return values


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    import tensorflow as tf

    tmp = tmp_path_factory.mktemp("release")
    layout = real_layout(tmp)
    ckpt = tmp / "ckpt"
    values = write_release_checkpoint(ckpt, layout)
    (ckpt / "alphabet.txt").write_text(KINYARWANDA_ALPHABET, encoding="utf-8")
    # the fixture is the real layout exactly: names, shapes, dtypes
    reader = tf.train.load_checkpoint(str(ckpt / f"best_dev-{STEP}"))
    assert reader.get_variable_to_shape_map() == {n: s for n, (s, _) in layout.items()}
    assert reader.get_variable_to_dtype_map() == {n: d for n, (_, d) in layout.items()}
    assert "cudnn_lstm/opaque_kernel/Adam_1" in layout and layout[LSTM_KERNEL][0] == [4096, 8192]
    return ckpt, values


def _data_dir(root: Path, alphabet: str) -> Path:
    """One clip (LDC93S1) as train and dev, and the given alphabet."""
    corpus = root / "extracted" / "ldc"
    corpus.mkdir(parents=True)
    shutil.copy(REPO / "tests/data/deepspeech_smoke/LDC93S1.wav", corpus / "LDC93S1.wav")
    for split in ("train", "dev"):
        (corpus / f"ldc_{split}.csv").write_text(
            f"wav_filename,wav_filesize,transcript\nLDC93S1.wav,93638,{TRANSCRIPT}\n", encoding="utf-8")
    (root / "models").mkdir()
    (root / "models" / "alphabet.txt").write_text(alphabet, encoding="utf-8")
    return root


def _train(root: Path, ckpt: Path, drop: int, n_hidden: int = 2048):
    from pipeline.model.network import read_checkpoint_weights
    from pipeline.model.train import Trainer
    from pipeline.paths import Paths
    from tests.train.helpers import train_config

    cfg = train_config(TRANSFER_LEARNING=1, TRANSFER_CHECKPOINT=str(ckpt), DROP_SOURCE_LAYERS=drop,
                       N_HIDDEN=n_hidden, EPOCHS=1, LEARNING_RATE=0.0, BATCH_SIZE=1,
                       LIVE_TRANSCRIPTS=0)
    paths = Paths.at(root)
    csvs = ([root / "extracted/ldc/ldc_train.csv"], [root / "extracted/ldc/ldc_dev.csv"])
    state = Trainer(cfg, paths, *csvs).run()
    return state, read_checkpoint_weights(paths.train_checkpoint_dir)


def _ds(attr_weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from pipeline.model.network import DS_NAMES

    return {DS_NAMES[k]: v for k, v in attr_weights.items()}


def test_transfer_learning_new_alphabet(release, tmp_path: Path) -> None:
    ckpt, values = release
    fr = (REPO / "pipeline/langs/fr/alphabet.txt").read_text(encoding="utf-8")
    state, got = _train(_data_dir(tmp_path / "data", fr), ckpt, drop=1)
    assert state["transfer_from"] == str(ckpt)
    got = _ds(got)
    for layer in DENSE_LAYERS[:-1]:
        for part in ("weights", "bias"):
            np.testing.assert_array_equal(got[f"{layer}/{part}"], values[f"{layer}/{part}"])
    np.testing.assert_array_equal(got[LSTM_KERNEL], values[LSTM_KERNEL])
    np.testing.assert_array_equal(got[LSTM_BIAS], values[LSTM_BIAS])
    assert got["layer_6/bias"].shape == (45,)  # French alphabet + blank, re-initialized


def test_fine_tuning_same_alphabet(release, tmp_path: Path) -> None:
    ckpt, values = release
    _, got = _train(_data_dir(tmp_path / "data", KINYARWANDA_ALPHABET), ckpt, drop=0)
    got = _ds(got)
    assert set(got) == {f"{layer}/{p}" for layer in DENSE_LAYERS for p in ("weights", "bias")} | \
        {LSTM_KERNEL, LSTM_BIAS}
    for name, v in got.items():
        np.testing.assert_array_equal(v, values[name])  # LEARNING_RATE=0: every weight as loaded


def test_width_mismatch_is_one_line(release, tmp_path: Path) -> None:
    ckpt, _ = release
    data = _data_dir(tmp_path / "data", KINYARWANDA_ALPHABET)
    proc = run_cli("run", "--data-dir", str(data), "--stages", "train", "--set", "CORPORA=ldc",
                   "--set", "TRANSFER_LEARNING=1", "--set", f"TRANSFER_CHECKPOINT={ckpt}",
                   "--set", "N_HIDDEN=64", "--set", "EPOCHS=1", "--set", "MODEL_LANGUAGE=en",
                   timeout=600)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    # our error lines ("HH:MM:SS error: ..."); not TensorFlow's oneDNN notice, printed before its
    # logging starts on some CPUs, which mentions "round-off errors"
    errors = [ln for ln in proc.stderr.splitlines() if re.search(r"\berror:", ln, re.IGNORECASE)]
    assert len(errors) == 1 and "N_HIDDEN=2048" in errors[0], proc.stderr[-3000:]


def test_only_export_from_the_release_checkpoint(release, tmp_path: Path) -> None:
    from pipeline.export.runtime import load_model

    ckpt, _ = release
    data = _data_dir(tmp_path / "data", KINYARWANDA_ALPHABET)
    shutil.copytree(ckpt, data / "checkpoints" / "best_dev")
    proc = run_cli("run", "--data-dir", str(data), "--stages", "export", "--set", "CORPORA=ldc",
                   "--set", "ONLY_EXPORT=1", "--set", "EXPORT_PARITY_CLIPS=0",
                   "--set", "MODEL_LANGUAGE=en", timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = load_model(data / "models" / "output_graph_fp32.tflite")
    assert model.n_hidden == 2048 and model.alphabet.labels[16:18] == ("q", "p")
    assert (data / "models" / "output_graph.pbmm").stat().st_size > 180_000_000
