"""Training report: loss-curve PNG and a Markdown + HTML page (data hours, config, curves, metrics,
worst samples), in `reports/`."""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.fsutil import atomic_write, write_text
from pipeline.lm.optimize import decoder_weights
from pipeline.model.train import TRAINING_SETTINGS
from pipeline.paths import Paths

log = logging.getLogger(__name__)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def plot_loss_curve(history: list[dict[str, Any]], out: Path) -> bool:
    """Train and dev loss per epoch. Returns False when there is nothing to plot."""
    if not history:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for key, label in (("train_loss", "train"), ("dev_loss", "dev")):
        pts = [(e, h[key]) for e, h in zip(epochs, history, strict=False) if h.get(key) is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("CTC loss (mean per utterance)")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "wb") as fh:
        fig.savefig(fh, format="png")
    plt.close(fig)
    return True


def write_report(cfg: Config, paths: Paths, results: dict[str, Any],
                 details: dict[str, dict[str, Any]]) -> Path:
    """Write reports/loss_curve.png, reports/training_report.md and .html; returns the .md path."""

    state = _read_json(paths.train_state) or {}
    done = _read_json(paths.train_done) or {}
    history = state.get("history", [])
    has_curve = plot_loss_curve(history, paths.loss_curve)
    md: list[str] = [f"# Training report ({cfg.general.model_language})", ""]
    md += ["## Data", "",
           f"- train: {done.get('train_samples', '?')} clips, {done.get('train_hours', 0):.2f} h",
           f"- dev: {done.get('dev_hours', 0):.2f} h",
           f"- rows dropped: {json.dumps(done.get('rejected', {}), ensure_ascii=False)}", ""]
    md += ["## Training", "",
           f"- {done.get('stop_reason', 'unknown')}; {done.get('global_step', '?')} steps in "
           f"{done.get('elapsed_s', 0) / 60:.1f} min",
           f"- best dev loss {done.get('best_dev_loss')} at epoch {done.get('best_epoch')}", ""]
    if has_curve:
        md += ["![loss curve](loss_curve.png)", ""]
    # training settings as the train stage used them; decoding settings as the test stage used them
    used = {**{k: v for k, v in cfg.as_env().items() if k in TRAINING_SETTINGS}, **done.get("config", {})}
    alpha, beta = decoder_weights(cfg, paths)
    used.update({"LM_ALPHA": f"{alpha:g}", "LM_BETA": f"{beta:g}", "BEAM_WIDTH": str(cfg.lm.beam_width)})
    md += ["## Configuration", "", "| variable | value |", "|---|---|"]
    md += [f"| `{k}` | `{v}` |" for k, v in used.items()]
    md += ["", "## Test results", "", "| test set | samples | WER | CER | greedy WER | greedy CER |",
           "|---|---|---|---|---|---|"]
    for name, r in results.items():
        md.append(f"| {name} | {r['samples']} | {r['wer']:.3f} | {r['cer']:.3f} | {r['greedy_wer']:.3f} | "
                  f"{r['greedy_cer']:.3f} |")
    for name, d in details.items():
        md += ["", f"### {name}", "", f"**Hint:** {d['hint']}", "", f"Decoder: {d['decoder']}", "",
               f"Worst samples (by {d.get('ranked_by', 'wer').upper()}):", "",
               "| reference | result | greedy | CER |", "|---|---|---|---|"]
        for s in d["examples"]["worst"]:
            md.append(f"| {s['reference']} | {s['decoded']} | {s['greedy']} | {s['cer']:.2f} |")
    md_path = paths.training_report_md
    text = "\n".join(md) + "\n"
    write_text(md_path, text)
    write_text(paths.training_report_html, _to_html(text))
    return md_path


def _to_html(markdown: str) -> str:
    """A small Markdown subset (headings, lists, tables, images) to standalone HTML."""
    out = ["<!doctype html><meta charset='utf-8'><title>Training report</title>",
           "<style>body{font-family:sans-serif;max-width:60em;margin:auto}table{border-collapse:collapse}"
           "td,th{border:1px solid #ccc;padding:2px 6px}</style>"]
    in_table = in_list = False
    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if all(set(c) <= {"-"} for c in cells):
                continue
            if not in_table:
                out.append("<table>")
                in_table = True
                out.append("<tr>" + "".join(f"<th>{html.escape(c.strip('`'))}</th>" for c in cells) + "</tr>")
                continue
            out.append("<tr>" + "".join(f"<td>{html.escape(c.strip('`'))}</td>" for c in cells) + "</tr>")
            continue
        if in_table:
            out.append("</table>")
            in_table = False
        if line.startswith("- "):
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{html.escape(line[2:])}</li>")
            continue
        if in_list:
            out.append("</ul>")
            in_list = False
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("!["):
            src = line[line.index("(") + 1: line.rindex(")")]
            out.append(f"<img src='{html.escape(src)}' alt='loss curve'>")
        elif line.strip():
            out.append(f"<p>{html.escape(line).replace('**', '')}</p>")
    if in_table:
        out.append("</table>")
    if in_list:
        out.append("</ul>")
    return "\n".join(out) + "\n"
