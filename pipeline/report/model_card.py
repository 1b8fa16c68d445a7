"""The model card (Markdown with YAML front matter, DeepSpeech / Coqui model-zoo fields), filled
from the data dir: data hours per corpus from the CSVs, test WER/CER from the test stage's
results, export sizes and parity from models/export_parity.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.corpus_csv import SPLITS, iter_rows
from pipeline.langs import LanguagePack
from pipeline.lm.optimize import decoder_weights
from pipeline.model.geometry import GRAPH_VERSION
from pipeline.paths import Paths

WAV_HEADER_BYTES = 44


def corpus_hours(cfg: Config, paths: Paths) -> dict[str, dict[str, float]]:
    """{corpus: {split: hours}} from the CSVs' wav_filesize (16 kHz mono PCM16)."""
    out: dict[str, dict[str, float]] = {}
    for corpus in cfg.active_corpora():
        for split in SPLITS:
            p = paths.corpus_csv(corpus, split)
            if not p.is_file():
                continue
            total = sum(max(0, r.wav_filesize - WAV_HEADER_BYTES) for r in iter_rows(p))
            out.setdefault(corpus, {})[split] = round(total / (16000 * 2) / 3600, 3)
    return out


def test_metrics(paths: Paths) -> dict[str, dict[str, float]]:
    """{test set: {"wer", "cer"}} from models/test_results.json, whatever its nesting."""
    if not paths.test_results.is_file():
        return {}
    data = json.loads(paths.test_results.read_text(encoding="utf-8"))
    found: dict[str, dict[str, float]] = {}

    def walk(obj: Any, name: str) -> None:
        if isinstance(obj, dict):
            if "wer" in obj and "cer" in obj and isinstance(obj["wer"], (int, float)):
                found[name or "test"] = {"wer": float(obj["wer"]), "cer": float(obj["cer"])}
                return
            for k, v in obj.items():
                walk(v, k if not name else f"{name}/{k}")
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                label = v.get("dataset") or v.get("name") if isinstance(v, dict) else None
                walk(v, str(label or f"{name}[{i}]"))

    walk(data, "")
    return found


def _size(p: Path) -> str:
    return f"{p.stat().st_size / 1e6:.1f} MB" if p.exists() else "missing"


def build_model_card(cfg: Config, paths: Paths, pack: LanguagePack) -> str:
    meta = pack.metadata
    e = cfg.export
    author = e.export_author or meta.get("author", "")
    name = e.export_model_name or meta.get("model_name", f"ds-pipeline-{pack.code}")
    license_ = e.export_license or meta.get("license", "")
    language = meta.get("language_tag", pack.code)
    parity: dict[str, Any] = {}
    parity_file = paths.export_parity
    if parity_file.is_file():
        parity = json.loads(parity_file.read_text(encoding="utf-8"))
    hours = corpus_hours(cfg, paths)
    alpha, beta = decoder_weights(cfg, paths)  # what the test stage and the scorer's defaults use
    metrics = test_metrics(paths)
    lines = [
        "---",
        f"author: {author}",
        f"model_name: {name}",
        f"model_version: {e.export_model_version}",
        f"contact_info: {e.export_contact}",
        f"license: {license_}",
        f"language: {language}",
        "runtime: tflite, tensorflow",
        "min_ds_version: 0.9.3",
        "max_ds_version: 0.9.3",
        "min_stt_version: 1.4.0 (tflite only)",
        "acoustic_model_url: " + pack.export_zip_name + ".zip",
        "scorer_url: " + pack.export_zip_name + ".zip",
        "---",
        "",
        f"# {name} {e.export_model_version} ({pack.name}, {language})",
        "",
        meta.get("description", ""),
        "",
        "## Model",
        "",
        f"- Architecture: DeepSpeech 0.9 (3 dense + 1 LSTM + 2 dense), "
        f"N_HIDDEN={parity.get('n_hidden', cfg.train.n_hidden)}, graph version {GRAPH_VERSION}.",
        "- Runtime: DeepSpeech 0.9.3 (`.pbmm`, `.tflite`) and Coqui STT 1.4.0 (`.tflite`).",
        f"- Beam width: {cfg.lm.beam_width}; scorer alpha {alpha:.4f}, beta {beta:.4f}"
        + (" (optimized on the dev set)" if paths.lm_optimize_result.is_file() else "") + ".",
        "",
        "| file | size |",
        "|---|---|",
    ]
    for p in (paths.output_graph_pb, paths.output_graph_pbmm, paths.output_graph_tflite,
              paths.output_graph_fp32_tflite, paths.scorer):
        lines.append(f"| {p.name} | {_size(p)} |")
    lines += ["", "## Training data", "", "| corpus | train h | dev h | test h |", "|---|---|---|---|"]
    for corpus, splits in hours.items():
        lines.append(f"| {corpus} | {splits.get('train', 0):.2f} | {splits.get('dev', 0):.2f} | "
                     f"{splits.get('test', 0):.2f} |")
    if not hours:
        lines.append("| (no corpus CSVs found) | | | |")
    lines += ["", "## Test results", "", "| test set | WER | CER |", "|---|---|---|"]
    for set_name, m in metrics.items():
        lines.append(f"| {set_name} | {m['wer']:.3f} | {m['cer']:.3f} |")
    if not metrics:
        lines.append(f"| (no {paths.test_results.name}) | | |")
    if "parity" in parity:
        p = parity["parity"]
        lines += ["", "## Export parity (greedy, dev clips)", "",
                  f"Checkpoint WER {p['checkpoint']['wer']:.3f}, CER {p['checkpoint']['cer']:.3f} "
                  f"on {len(p['clips'])} clips.", "", "| artifact | WER | CER | same transcripts |",
                  "|---|---|---|---|"]
        for k, a in p["artifacts"].items():
            lines.append(f"| {k} | {a['wer']:.3f} | {a['cer']:.3f} | {a['same_as_checkpoint']} |")
        if "int8_wer_delta" in p:
            lines.append("")
            lines.append(f"int8 vs fp32 `.tflite`: WER delta {p['int8_wer_delta']:+.3f}.")
    lines += ["", "## Limitations", "",
              "Trained on read speech from public corpora; expect higher error rates on noisy, "
              "spontaneous or accented speech and on vocabulary absent from the language model.", ""]
    return "\n".join(lines)
