"""The data-dir layout (`/mnt` in the container). Every stage gets its paths from here, so the
done-check and the writer always agree on a name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    root: Path

    @classmethod
    def at(cls, root: str | Path) -> Paths:
        return cls(Path(root).expanduser().absolute())

    # top-level folders ------------------------------------------------------------------------
    @property
    def sources(self) -> Path:
        """Inputs the user drops in and downloads; never modified."""
        return self.root / "sources"

    @property
    def langs(self) -> Path:
        """Language packs of this data dir (`langs/<code>/`), searched before the built-in ones."""
        return self.root / "langs"

    @property
    def lm_text_dir(self) -> Path:
        """Local LM text the user drops in (`sources/lm/*.txt[.gz|.xz]`), added to the LM."""
        return self.sources / "lm"

    @property
    def extracted(self) -> Path:
        return self.root / "extracted"

    @property
    def lm(self) -> Path:
        return self.root / "lm"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def state(self) -> Path:
        return self.root / ".state"

    @property
    def tmp(self) -> Path:
        """Scratch space on the data disk (large temp files)."""
        return self.root / "tmp"

    def top_level_dirs(self) -> list[Path]:
        return [self.sources, self.extracted, self.lm, self.checkpoints, self.models, self.reports,
                self.logs, self.state, self.tmp]

    # state ------------------------------------------------------------------------------------
    @property
    def lock_file(self) -> Path:
        return self.state / "lock"

    def marker(self, stage: str) -> Path:
        return self.state / f"{stage}.done.json"

    def stage_tmp(self, stage: str) -> Path:
        """A stage's private temp space; emptied before the stage runs."""
        return self.tmp / stage

    # corpora ----------------------------------------------------------------------------------
    def corpus_dir(self, corpus: str) -> Path:
        return self.extracted / corpus

    def corpus_csv(self, corpus: str, split: str) -> Path:
        return self.corpus_dir(corpus) / f"{corpus}_{split}.csv"

    def corpus_report(self, corpus: str) -> Path:
        return self.corpus_dir(corpus) / "import_report.json"

    def corpus_quarantine(self, corpus: str) -> Path:
        return self.corpus_dir(corpus) / f"{corpus}_quarantine.csv"

    @property
    def heldout_sentences(self) -> Path:
        """Normalized dev+test transcripts of all corpora, excluded from the LM text."""
        return self.extracted / "heldout_sentences.txt"

    # alphabet / LM ----------------------------------------------------------------------------
    @property
    def alphabet(self) -> Path:
        return self.models / "alphabet.txt"

    @property
    def alphabet_report(self) -> Path:
        return self.reports / "alphabet_report.json"

    @property
    def lm_binary(self) -> Path:
        return self.lm / "lm.binary"

    @property
    def scorer(self) -> Path:
        return self.lm / "kenlm.scorer"

    @property
    def lm_report(self) -> Path:
        return self.lm / "lm_report.json"

    def vocab(self, top_k: int) -> Path:
        """The LM vocabulary (top-k words), also the scorer's word list."""
        return self.lm / f"vocab-{top_k}.txt"

    @property
    def lm_optimize_result(self) -> Path:
        return self.models / "lm_optimize.json"

    def acoustic_cache(self, name: str) -> Path:
        """The cached acoustic outputs of one CSV set (pipeline.model.output_cache)."""
        return self.tmp / "acoustic_outputs" / f"{name}.npz"

    # training / models ------------------------------------------------------------------------
    @property
    def best_checkpoint_dir(self) -> Path:
        return self.checkpoints / "best_dev"

    @property
    def train_checkpoint_dir(self) -> Path:
        return self.checkpoints / "train"

    @property
    def train_state(self) -> Path:
        """Progress of the current training run (epoch, step, best dev loss, ...)."""
        return self.train_checkpoint_dir / "train_state.json"

    @property
    def train_done(self) -> Path:
        """Written last by a finished training run."""
        return self.checkpoints / "train_done.json"

    @property
    def tensorboard(self) -> Path:
        return self.logs / "tensorboard"

    def worker_tmp(self, worker: int) -> Path:
        """Scratch space of one training worker (the best checkpoint is assembled there)."""
        return self.tmp / f"best_worker{worker}"

    @property
    def output_graph_pb(self) -> Path:
        return self.models / "output_graph.pb"

    @property
    def output_graph_pbmm(self) -> Path:
        return self.models / "output_graph.pbmm"

    @property
    def output_graph_tflite(self) -> Path:
        return self.models / "output_graph.tflite"

    @property
    def output_graph_fp32_tflite(self) -> Path:
        return self.models / "output_graph_fp32.tflite"

    @property
    def export_parity(self) -> Path:
        return self.models / "export_parity.json"

    @property
    def test_results(self) -> Path:
        return self.models / "test_results.json"

    def test_report(self, test_set: str) -> Path:
        """Per-sample results of one test set."""
        return self.reports / f"test_{test_set}.json"

    @property
    def loss_curve(self) -> Path:
        return self.reports / "loss_curve.png"

    @property
    def training_report_md(self) -> Path:
        return self.reports / "training_report.md"

    @property
    def training_report_html(self) -> Path:
        return self.reports / "training_report.html"

    @property
    def model_card(self) -> Path:
        return self.models / "MODEL_CARD.md"

    @property
    def resolved_config(self) -> Path:
        """The effective settings of the last run, as an env file (written by `run`)."""
        return self.models / "config.env"

    # packages (data-dir root, seed names) -----------------------------------------------------
    def release_zip(self, zip_name: str) -> Path:
        return self.root / f"{zip_name}.zip"

    def package_archive(self, kind: str, lang: str) -> Path:
        """kind: 'model_tensorflow', 'model_tflite' or 'checkpoint'."""
        return self.root / f"{kind}_{lang}.tar.xz"
