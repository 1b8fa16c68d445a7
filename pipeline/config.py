"""The configuration: one frozen, typed tree built from layered sources.

Precedence, lowest first: field defaults < language pack (`MODEL_LANGUAGE`) < `--env-file` files (in
the order given) < process environment < CLI flags. Every field carries its environment name (the
seed pipelines' names), a one-line help text and its valid range. Parsing is strict and gathers every
problem into one `ConfigError`.

To add a variable: add a `var(...)` field to the section it belongs to, then either add it to the
`config_keys` of every stage whose output it changes (the stage fingerprints) or to
`pipeline.stages.NO_OUTPUT_EFFECT`; a test checks that every variable is in one of them. The `config`
command and the README table (`ds-pipeline config --markdown`) pick it up by themselves.

`effective()` applies the settings that rewrite others (FAST_TRAIN) once, inside `load_config`, so the
printed configuration, the fingerprints and every stage see the values that actually run.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

BOOL_TRUE = {"1", "true", "yes"}
BOOL_FALSE = {"0", "false", "no"}


@dataclass(frozen=True)
class LmRange:
    """`LM_EVALUATE_RANGE=alpha_max,beta_max,n_trials`."""

    alpha_max: float
    beta_max: float
    n_trials: int

    def __str__(self) -> str:
        return f"{self.alpha_max:g},{self.beta_max:g},{self.n_trials}"


def var(default: Any, env: str, help: str, *, kind: str | None = None, min: float | None = None,
        max: float | None = None, choices: Sequence[str] | None = None,
        check: Callable[[Any], str | None] | None = None) -> Any:
    """Declare a config field. `kind` is inferred from the default unless given; `check` returns
    an error text (the expected form) for a parsed value it rejects."""
    if kind is None:
        kind = {bool: "bool", int: "int", float: "float", str: "str"}[type(default)]
    meta = {"env": env, "help": help, "kind": kind, "min": min, "max": max, "choices": choices,
            "check": check}
    if isinstance(default, (list, tuple)):
        return field(default=tuple(default), metadata=meta)
    return field(default=default, metadata=meta)


# SPLIT_POLICY values (importers.engine deals the splits); the first is the default.
SPLIT_POLICIES = ("speaker+sentence", "speaker", "sentence", "none")


def _check_checksum(value: str) -> str | None:
    if not value:
        return None
    algo, _, hexdigest = value.partition(":")
    if algo in ("sha1", "sha256") and hexdigest and all(c in "0123456789abcdefABCDEF" for c in hexdigest):
        return None
    return "'sha256:HEX' or 'sha1:HEX'"


def _check_prune(value: str) -> str | None:
    if all(p.strip().isdigit() for p in value.split("|")):
        return None
    return "integers separated by '|', e.g. 0|0|1"


def _check_rate(value: int) -> str | None:
    # DeepSpeech's rule: the 32 ms window and 20 ms step must be whole numbers of samples
    if value * 32 % 1000 == 0 and value * 20 % 1000 == 0:
        return None
    return "a rate whose 32 ms window and 20 ms step are whole sample counts (e.g. 8000, 16000)"


def _check_size(value: str) -> str | None:
    v = value.strip()
    num = v[:-1] if v and v[-1] in "KMGTkmgt" else v
    if num.isdigit():
        return None
    return "a size like 512M or 4G (a percentage reserves most of the machine's memory)"


# ---------------------------------------------------------------------------------------------
# Sections. Field order is display order.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GeneralConfig:
    model_language: str = var("fr", "MODEL_LANGUAGE",
                              "language pack to use (alphabet, corpora, LM sources, export names)")
    corpora: tuple[str, ...] = var((), "CORPORA",
                                   "comma list of importer keys to import (default: the language pack's list)",
                                   kind="list")
    fast_train: bool = var(False, "FAST_TRAIN",
                           "smoke run: a few samples, a tiny LM, seconds-long training")
    only_export: bool = var(False, "ONLY_EXPORT",
                            "skip training; re-export from the best checkpoint")
    random_seed: int = var(4568, "RANDOM_SEED", "seed for splits, shuffling and initialization", min=0)
    workers: int = var(0, "WORKERS", "worker processes for import and decoding (0 = one per CPU)",
                       min=0, max=256)


@dataclass(frozen=True)
class DataConfig:
    english_compatible: bool = var(False, "ENGLISH_COMPATIBLE",
                                   "transliterate labels and LM text to the English a-z' alphabet")
    bytes_output_mode: bool = var(False, "BYTES_OUTPUT_MODE",
                                  "DeepSpeech's --bytes_output_mode: train on UTF-8 bytes (255 byte labels "
                                  "+ blank, for large alphabets such as Chinese) with a UTF-8-mode scorer")
    strict_alphabet: bool = var(False, "STRICT_ALPHABET",
                                "quarantine transcripts with letters missing from the alphabet instead "
                                "of folding them to a base letter (ñ -> n); folds are always counted")
    duplicate_sentence_count: int = var(1, "DUPLICATE_SENTENCE_COUNT",
                                        "Common Voice: >1 rebuilds train/dev/test from validated.tsv "
                                        "with up to N clips per sentence", min=1, max=1000)
    cv_archive: str = var("", "CV_ARCHIVE",
                          "Common Voice archive file name in sources/ (default: the language pack's)")
    cv_checksum: str = var("", "CV_CHECKSUM",
                           "expected checksum of the CV archive, 'sha256:HEX' or 'sha1:HEX' "
                           "(default: the language pack's; empty = not checked)", check=_check_checksum)
    min_duration: float = var(0.5, "MIN_DURATION", "shortest clip kept, seconds", min=0.0, max=60.0)
    max_duration: float = var(15.0, "MAX_DURATION", "longest clip kept, seconds", min=0.5, max=3600.0)
    min_kept_ratio: float = var(0.5, "MIN_KEPT_RATIO",
                                "fail the import if a corpus keeps less than this fraction of its rows",
                                min=0.0, max=1.0)
    audio_sample_rate: int = var(16000, "AUDIO_SAMPLE_RATE",
                                 "sample rate of the model (DeepSpeech --audio_sample_rate): 16000, or "
                                 "8000 for telephone audio; import converts to it, features, the "
                                 "exported metadata and transcribe follow it", min=8000, max=48000,
                                 check=_check_rate)
    audio_normalize: bool = var(False, "AUDIO_NORMALIZE",
                                "import brings every clip's speech to one level (-22 dBFS RMS of its "
                                "speech frames) before the 16-bit quantization, for corpora of few "
                                "speakers recorded at different levels; transcribe then does the same "
                                "to each segment. The model expects that level (docs/real-speech.md)")
    split_policy: str = var(SPLIT_POLICIES[0], "SPLIT_POLICY",
                            "what dev/test must not share with train: speaker+sentence (falls back "
                            "to speaker, sentence, none when it would keep less than MIN_KEPT_RATIO "
                            "or no train rows), speaker, sentence or none",
                            choices=SPLIT_POLICIES)
    csv_list: str = var("", "CSV_LIST",
                        "csv importer: your clip list in sources/ (or an absolute path), "
                        "'path,transcript[,speaker]' or a DeepSpeech CSV (default: the pack's "
                        "[corpus.csv] list, else sources/corpus.csv)")
    train_files: tuple[str, ...] = var((), "TRAIN_FILES",
                                       "pre-split clip lists used as the train split as given "
                                       "(DeepSpeech --train_files): comma list of files in sources/ "
                                       "or absolute paths, read by the csv importer; setting any of "
                                       "TRAIN_FILES/DEV_FILES/TEST_FILES imports only them (plus CORPORA)",
                                       kind="list")
    dev_files: tuple[str, ...] = var((), "DEV_FILES",
                                     "pre-split clip lists used as the dev split as given "
                                     "(DeepSpeech --dev_files); see TRAIN_FILES", kind="list")
    test_files: tuple[str, ...] = var((), "TEST_FILES",
                                      "pre-split clip lists used as the test split as given "
                                      "(DeepSpeech --test_files); see TRAIN_FILES", kind="list")


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = var(64, "BATCH_SIZE", "batch size for train, dev and test (per replica)",
                          min=1, max=65536)
    epochs: int = var(30, "EPOCHS", "maximum number of training epochs", min=0, max=100000)
    learning_rate: float = var(0.0001, "LEARNING_RATE", "Adam learning rate", min=0.0, max=10.0)
    n_hidden: int = var(2048, "N_HIDDEN", "width of the dense layers and of the LSTM", min=1,
                        max=65536)
    dropout: float = var(0.3, "DROPOUT", "dropout rate of the dense layers", min=0.0, max=0.95)
    early_stop: bool = var(True, "EARLY_STOP",
                           "stop when the dev loss has not improved for ES_STOP epochs")
    es_stop: int = var(25, "ES_STOP", "early-stop patience in epochs (DeepSpeech es_epochs)", min=1,
                       max=100000)
    es_min_delta: float = var(0.05, "ES_MIN_DELTA",
                              "smallest dev-loss decrease that counts as an improvement", min=0.0)
    reduce_lr_on_plateau: bool = var(False, "REDUCE_LR_ON_PLATEAU",
                                     "multiply the LR by PLATEAU_REDUCTION after PLATEAU_EPOCHS "
                                     "epochs without improvement")
    plateau_epochs: int = var(10, "PLATEAU_EPOCHS", "epochs without improvement before reducing the LR",
                              min=1)
    plateau_reduction: float = var(0.1, "PLATEAU_REDUCTION", "LR factor applied on a plateau",
                                   min=0.0, max=1.0)
    lr_decay: str = var("none", "LR_DECAY",
                        "learning-rate schedule over the training budget (EPOCHS, or TRAIN_MAX_MINUTES "
                        "when that ends first), set at each epoch's start: none = constant; cosine or "
                        "linear = from LEARNING_RATE down to LR_DECAY_FLOOR times it",
                        choices=("none", "cosine", "linear"))
    lr_decay_floor: float = var(0.05, "LR_DECAY_FLOOR",
                                "LR_DECAY: the last epochs' learning rate as a fraction of LEARNING_RATE",
                                min=0.0, max=1.0)
    sortagrad_epochs: int = var(0, "SORTAGRAD_EPOCHS",
                                "train the first N epochs on batches in order of duration, shortest "
                                "first (SortaGrad, Deep Speech 2), then shuffled; 0 = shuffled from the "
                                "start", min=0)
    max_to_keep: int = var(5, "MAX_TO_KEEP", "training checkpoints kept", min=1, max=1000)
    checkpoint_secs: int = var(600, "CHECKPOINT_SECS",
                               "seconds between mid-epoch checkpoints (0 = off)", min=0)
    checkpoint_steps: int = var(0, "CHECKPOINT_STEPS",
                                "also save a mid-epoch checkpoint every this many updates, independent "
                                "of the machine's speed (0 = off)", min=0)
    amp: bool = var(False, "AMP", "automatic mixed precision (float16 on GPU, loss scaling)")
    transfer_learning: bool = var(False, "TRANSFER_LEARNING",
                                  "start from the checkpoint in TRANSFER_CHECKPOINT")
    transfer_checkpoint: str = var("/transfer-checkpoint", "TRANSFER_CHECKPOINT",
                                   "source checkpoint directory for transfer learning (read-only)")
    drop_source_layers: int = var(1, "DROP_SOURCE_LAYERS",
                                  "transfer: re-initialize the last N layers (6, 5, lstm, 3, 2)",
                                  min=0, max=5)
    augment: str = var("", "AUGMENT",
                       "train-set augmentations, e.g. 'specaugment,tempo=0.9:1.1,volume,noise=0.01'")
    feature_norm: bool = var(False, "FEATURE_NORM",
                             "normalize each MFCC coefficient by the training set's mean and standard "
                             "deviation (measured when a run starts from random weights, stored with "
                             "the checkpoint, folded into layer_1 on export); 0 = raw features as "
                             "DeepSpeech")
    ema_decay: float = var(0.0, "EMA_DECAY",
                           "keep an exponential moving average of the weights, updated every step with "
                           "this decay (e.g. 0.999; the first steps average over fewer updates): the "
                           "dev loss, early stopping, best_dev/ and the exports use the averaged "
                           "weights; 0 = off (the weights as trained, as DeepSpeech)", min=0.0,
                           max=0.99999)
    feature_cache: bool = var(False, "FEATURE_CACHE",
                              "keep train and dev features in memory after the first epoch (small corpora)")
    train_max_minutes: float = var(0.0, "TRAIN_MAX_MINUTES",
                                   "wall-clock budget for training in minutes, across resumes; training "
                                   "ends at the last epoch that fits (0 = no limit)", min=0.0)
    max_batch_seconds: float = var(0.0, "MAX_BATCH_SECONDS",
                                   "batch by total padded audio duration instead of BATCH_SIZE "
                                   "(seconds per replica batch, 0 = off)", min=0.0)
    transfer_keep_shared_chars: bool = var(False, "TRANSFER_KEEP_SHARED_CHARS",
                                           "transfer with a different alphabet and DROP_SOURCE_LAYERS=0: "
                                           "keep the output rows of characters both alphabets share")
    live_transcripts: int = var(3, "LIVE_TRANSCRIPTS",
                                "dev samples transcribed (greedy) in the log after each epoch", min=0,
                                max=100)
    nonfinite_limit: int = var(20, "NONFINITE_LIMIT",
                               "stop training after this many consecutive batches with a non-finite "
                               "loss or gradient", min=1)
    lstm_impl: str = var("auto", "LSTM_IMPL",
                         "how the LSTM is computed (same weights and checkpoints): auto = cudnn when a "
                         "GPU is visible, else scan; cudnn; block (BlockLSTM); scan",
                         choices=("auto", "scan", "cudnn", "block"))
    oom_auto_batch: bool = var(False, "OOM_AUTO_BATCH",
                               "when the longest batch runs out of GPU memory (probed before the first "
                               "epoch), train with the MAX_BATCH_SECONDS that fits instead of stopping")


@dataclass(frozen=True)
class LmConfig:
    lm_alpha: float = var(0.931289039105002, "LM_ALPHA",
                          "language model weight in beam search (DeepSpeech release default)",
                          min=0.0, max=100.0)
    lm_beta: float = var(1.1834137581510284, "LM_BETA", "word insertion bonus in beam search",
                         min=-100.0, max=100.0)
    lm_top_k: int = var(500000, "LM_TOP_K", "LM vocabulary size (most frequent words kept)", min=1)
    lm_order: int = var(4, "LM_ORDER", "n-gram order of the KenLM model (KenLM is built for at most 6)",
                        min=1, max=6)
    lm_prune: str = var("0|0|1", "LM_PRUNE", "lmplz --prune thresholds, '|'-separated",
                        check=_check_prune)
    lm_memory: str = var("1G", "LM_MEMORY", "lmplz --memory as a size (e.g. 512M, 4G), not a %",
                         check=_check_size)
    lm_evaluate_range: LmRange | None = var(None, "LM_EVALUATE_RANGE",
                                            "alpha_max,beta_max,n_trials: search LM_ALPHA/LM_BETA on the "
                                            "dev set (empty = off)", kind="lm_range")
    beam_width: int = var(500, "BEAM_WIDTH", "beam width for decoding with the scorer", min=1,
                          max=100000)
    lm_optimize_max_clips: int = var(2000, "LM_OPTIMIZE_MAX_CLIPS",
                                     "dev clips lm_optimize decodes per trial: a fixed pseudo-random "
                                     "subset of this size (0 = every dev clip)", min=0)
    lm_optimize_prune_margin: float = var(0.05, "LM_OPTIMIZE_PRUNE_MARGIN",
                                          "lm_optimize stops a trial whose WER (CER) on the first "
                                          "quarter of the dev clips exceeds the best trial's there "
                                          "by more than this (1 = never stop a trial)",
                                          min=0.0, max=1.0)
    kenlm_bin: str = var("", "KENLM_BIN",
                         "directory with lmplz/filter/build_binary (default: PATH, then the build cache)")


@dataclass(frozen=True)
class ExportConfig:
    export_author: str = var("", "EXPORT_AUTHOR", "model card author (default: language pack)")
    export_model_name: str = var("", "EXPORT_MODEL_NAME", "model card name (default: language pack)")
    export_model_version: str = var("0.1.0", "EXPORT_MODEL_VERSION", "model card version")
    export_license: str = var("", "EXPORT_LICENSE", "model card license (default: language pack)")
    export_contact: str = var("", "EXPORT_CONTACT", "model card contact info")
    export_parity_clips: int = var(5, "EXPORT_PARITY_CLIPS",
                                   "dev clips transcribed with every exported artifact to check "
                                   "them against the checkpoint (0 = skip the check)",
                                   min=0, max=1000)


@dataclass(frozen=True)
class Config:
    general: GeneralConfig = field(default_factory=GeneralConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    lm: LmConfig = field(default_factory=LmConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    # env name -> where the value came from ("default", "pack:fr", "env-file f:3", "environment", "cli")
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    # the data dir whose `langs/` is searched for language packs first ("" = built-in packs only)
    data_dir: str = field(default="", compare=False)

    def value(self, env: str) -> Any:
        """The value of the variable named `env` (e.g. "BATCH_SIZE")."""
        section, name = _ENV_INDEX[env]
        return getattr(getattr(self, section), name)

    def split_files(self) -> dict[str, tuple[str, ...]]:
        """The pre-split lists (TRAIN_FILES, DEV_FILES, TEST_FILES) that are set, by split."""
        d = self.data
        return {sp: files for sp, files in (("train", d.train_files), ("dev", d.dev_files),
                                            ("test", d.test_files)) if files}

    def active_corpora(self) -> tuple[str, ...]:
        """CORPORA, or the language pack's corpus list when CORPORA is empty. Pre-split lists
        (TRAIN_FILES...) are enough on their own, as in DeepSpeech: they add the `csv` corpus and
        replace the pack's list (CORPORA still adds corpora to them)."""
        if self.split_files():
            named = self.general.corpora
            return named if "csv" in named else (*named, "csv")
        if self.general.corpora:
            return self.general.corpora
        from pipeline.langs import load_pack

        return load_pack(self.general.model_language, self.data_dir or None).corpora

    def as_env(self) -> dict[str, str]:
        """Every variable as the string a user would write in an env file."""
        return {spec.env: format_value(self.value(spec.env)) for spec in SPECS}

    def as_env_file(self) -> str:
        """Every variable as a docker `--env-file` that `read_env_file` reads back to the same values.
        Pipeline variables only: nothing else from the environment (tokens, proxies) gets in."""
        lines = ["# ds-pipeline: the effective settings of the last `run` (usable as --env-file)"]
        for key, value in self.as_env().items():
            # env files have no quoting: one line per value, so a line break cannot be kept
            lines.append(f"{key}={' '.join(value.splitlines())}")
        return "\n".join(lines) + "\n"

    def with_values(self, **env_values: Any) -> Config:
        """A copy with some variables replaced by already-typed values (tests, derived settings)."""
        sections: dict[str, dict[str, Any]] = {}
        for env, val in env_values.items():
            section, name = _ENV_INDEX[env]
            sections.setdefault(section, {})[name] = val
        kw = {s: dataclasses.replace(getattr(self, s), **v) for s, v in sections.items()}
        return dataclasses.replace(self, **kw)


# ---------------------------------------------------------------------------------------------
# Field registry
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VarSpec:
    env: str
    section: str
    name: str
    kind: str
    default: Any
    help: str
    min: float | None
    max: float | None
    choices: Sequence[str] | None
    check: Callable[[Any], str | None] | None = None

    def valid_form(self) -> str:
        if self.kind == "bool":
            return "one of 1/0/true/false/yes/no"
        if self.kind == "lm_range":
            return "'alpha_max,beta_max,n_trials' (e.g. 5,5,600) or empty"
        if self.kind == "list":
            return "a comma-separated list"
        if self.choices:
            return "one of " + "/".join(self.choices)
        what = {"int": "an integer", "float": "a number", "str": "text"}[self.kind]
        if self.min is not None and self.max is not None:
            return f"{what} in [{self.min:g}, {self.max:g}]"
        if self.min is not None:
            return f"{what} >= {self.min:g}"
        return what


_SECTION_TYPES: dict[str, type] = {
    "general": GeneralConfig, "data": DataConfig, "train": TrainConfig, "lm": LmConfig,
    "export": ExportConfig,
}


def _collect_specs() -> list[VarSpec]:
    specs: list[VarSpec] = []
    for sec_name, sec_type in _SECTION_TYPES.items():
        for f in dataclasses.fields(sec_type):
            m = f.metadata
            specs.append(VarSpec(m["env"], sec_name, f.name, m["kind"], f.default, m["help"],
                                 m["min"], m["max"], m["choices"], m["check"]))
    return specs


SPECS: list[VarSpec] = _collect_specs()
_ENV_INDEX: dict[str, tuple[str, str]] = {s.env: (s.section, s.name) for s in SPECS}
SPEC_BY_ENV: dict[str, VarSpec] = {s.env: s for s in SPECS}
ENV_NAMES: frozenset[str] = frozenset(_ENV_INDEX)


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, tuple):
        return ",".join(value)
    if value is None:
        return ""
    return str(value)


def parse_value(spec: VarSpec, raw: str) -> Any:
    """Parse one raw string for `spec`; raise ValueError with the valid form on failure."""
    text = raw.strip()
    bad = ValueError(f"{spec.env}={raw!r} is invalid: expected {spec.valid_form()}")
    if spec.kind == "bool":
        low = text.lower()
        if low in BOOL_TRUE:
            return True
        if low in BOOL_FALSE:
            return False
        raise bad
    if spec.kind == "list":
        return tuple(p.strip() for p in text.split(",") if p.strip())
    if spec.kind == "lm_range":
        if not text:
            return None
        parts = text.split(",")
        try:
            if len(parts) != 3:
                raise ValueError
            rng = LmRange(float(parts[0]), float(parts[1]), int(parts[2]))
        except ValueError:
            raise bad from None
        if rng.alpha_max <= 0 or rng.beta_max <= 0 or rng.n_trials < 1:
            raise ValueError(f"{spec.env}={raw!r} is invalid: alpha_max and beta_max must be > 0 "
                             f"and n_trials >= 1")
        return rng
    if spec.kind == "int":
        try:
            value: Any = int(text)
        except ValueError:
            raise bad from None
    elif spec.kind == "float":
        try:
            value = float(text)
        except ValueError:
            raise bad from None
        if value != value or value in (float("inf"), float("-inf")):
            raise bad
    else:
        value = raw
    if spec.min is not None and value < spec.min:
        raise bad
    if spec.max is not None and value > spec.max:
        raise bad
    if spec.choices and value not in spec.choices:
        raise bad
    if spec.check is not None:
        form = spec.check(value)
        if form:
            raise ValueError(f"{spec.env}={raw!r} is invalid: expected {form}")
    return value


# ---------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layer:
    """Raw `KEY -> (value, origin)` pairs from one source."""

    name: str
    values: dict[str, tuple[str, str]]


def _unknown_key_message(key: str, where: str) -> str:
    close = difflib.get_close_matches(key, ENV_NAMES, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"{where}: unknown variable {key}{hint}"


def read_env_file(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> tuple[Layer, list[str]]:
    """Parse a docker `--env-file`: `KEY=VALUE` lines, `#` comments, blank lines.

    As in docker, the value is taken literally (no quote removal) and a bare `KEY` line takes the
    value from the environment if set. Returns the layer and the list of problems found.
    """
    path = Path(path)
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    values: dict[str, tuple[str, str]] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Layer(str(path), {}), [f"{path}: env file not found"]
    except UnicodeDecodeError:
        return Layer(str(path), {}), [f"{path}: env file is not UTF-8"]
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{path}:{lineno}"
        key, sep, value = line.lstrip().partition("=")
        key = key.strip()
        if not key or " " in key or key.startswith("export "):
            problems.append(f"{where}: expected KEY=VALUE, got {line!r}")
            continue
        if key not in ENV_NAMES:
            problems.append(_unknown_key_message(key, where))
            continue
        if not sep:
            if key in environ:
                values[key] = (environ[key], f"env-file {path.name}:{lineno} (from environment)")
            continue
        values[key] = (value, f"env-file {path.name}:{lineno}")
    return Layer(str(path), values), problems


def environment_layer(environ: Mapping[str, str]) -> Layer:
    return Layer("environment", {k: (v, "environment") for k, v in environ.items() if k in ENV_NAMES})


# Names of the pipeline's own environment (not settings): never reported as typos.
_OTHER_OWN_NAMES = frozenset({"DS_DATA_DIR", "KENLM_BIN"})


def environment_typos(environ: Mapping[str, str]) -> list[str]:
    """Warnings for environment variables that look like a misspelled setting (`EPOHCS=5` from
    `docker run -e` or Docker's `--env-file`, which the pipeline never sees as a file).

    The process environment holds many unrelated names (PATH, HOSTNAME, ...), so only close matches
    count: same first letter, similarity >= 0.8, and not a known name.
    """
    out = []
    for name in sorted(environ):
        if name in ENV_NAMES or name in _OTHER_OWN_NAMES or not name.isupper() or len(name) < 4:
            continue
        close = [c for c in difflib.get_close_matches(name, ENV_NAMES, n=3, cutoff=0.8)
                 if c[0] == name[0]]
        if close:
            out.append(f"environment variable {name} is not a ds-pipeline setting and is ignored "
                       f"(did you mean {close[0]}?)")
    return out


def overrides_layer(pairs: Iterable[str]) -> tuple[Layer, list[str]]:
    """CLI `--set KEY=VALUE` pairs."""
    values: dict[str, tuple[str, str]] = {}
    problems = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep:
            problems.append(f"--set {pair!r}: expected KEY=VALUE")
        elif key not in ENV_NAMES:
            problems.append(_unknown_key_message(key, f"--set {pair}"))
        else:
            values[key] = (value, "cli")
    return Layer("cli", values), problems


def load_config(env_files: Sequence[str | os.PathLike[str]] = (), *,
                environ: Mapping[str, str] | None = None,
                overrides: Iterable[str] = (), lang: str | None = None,
                data_dir: str | os.PathLike[str] | None = None) -> Config:
    """Resolve the configuration from all sources. Raises ConfigError naming every problem.

    `data_dir`: its `langs/` folder is searched for the language pack before the built-in packs.
    Environment variables that look like a misspelled setting are logged as warnings."""
    import logging

    from pipeline.langs import load_pack
    from pipeline.langs.validate import defaults_key_line

    environ = os.environ if environ is None else environ
    for warning in environment_typos(environ):
        logging.getLogger("pipeline.config").warning("%s", warning)
    problems: list[str] = []
    layers: list[Layer] = []
    for f in env_files:
        layer, errs = read_env_file(f, environ)
        layers.append(layer)
        problems.extend(errs)
    layers.append(environment_layer(environ))
    cli_pairs = list(overrides)
    if lang is not None:
        cli_pairs.append(f"MODEL_LANGUAGE={lang}")
    layer, errs = overrides_layer(cli_pairs)
    layers.append(layer)
    problems.extend(errs)

    # The language decides the pack, whose defaults sit just above the built-in ones.
    language = SPEC_BY_ENV["MODEL_LANGUAGE"].default
    for layer in layers:
        if "MODEL_LANGUAGE" in layer.values:
            language = layer.values["MODEL_LANGUAGE"][0].strip()
    pack_layer = Layer("pack", {})
    try:
        pack = load_pack(language, Path(data_dir) if data_dir is not None else None)
    except ConfigError as exc:
        problems.append(str(exc))
    else:
        for key, value in pack.defaults.items():
            if key not in ENV_NAMES:
                pack_file = pack.directory / "pack.toml"
                where = f"{pack_file}:{defaults_key_line(pack_file, key)}"
                problems.append(_unknown_key_message(repr(key), where).replace(
                    f"{where}: unknown variable {key!r}", f"{where}: unknown variable {key!r} in [defaults]"))
            else:
                pack_layer.values[key] = (value, f"pack:{language}")
    layers.insert(0, pack_layer)

    sections: dict[str, dict[str, Any]] = {}
    sources: dict[str, str] = {}
    for spec in SPECS:
        raw: tuple[str, str] | None = None
        for layer in layers:
            if spec.env in layer.values:
                raw = layer.values[spec.env]
        if raw is None:
            value, origin = spec.default, "default"
        else:
            try:
                value = parse_value(spec, raw[0])
            except ValueError as exc:
                problems.append(f"{exc} (from {raw[1]})")
                continue
            origin = raw[1]
        sections.setdefault(spec.section, {})[spec.name] = value
        sources[spec.env] = origin
    if problems:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))
    cfg = Config(**{name: _SECTION_TYPES[name](**vals) for name, vals in sections.items()},
                 sources=sources, data_dir=str(data_dir) if data_dir is not None else "")
    cross = _cross_checks(cfg)
    if cross:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(cross))
    return effective(cfg)


@dataclass(frozen=True)
class FastTrainLimits:
    """What FAST_TRAIN=1 shrinks, so that every stage of a smoke run takes seconds."""

    import_rows: tuple[tuple[str, int], ...] = (("train", 200), ("dev", 50), ("test", 50))
    import_total: int = 300       # rows imported per corpus, chosen by hash
    train_samples: int = 16       # training samples used
    dev_samples: int = 8          # dev samples used
    test_samples: int = 16        # test clips decoded per test set
    n_hidden: int = 64            # N_HIDDEN at most this
    lm_top_k: int = 500           # LM_TOP_K at most this


FAST_TRAIN = FastTrainLimits()


def effective(cfg: Config) -> Config:
    """The configuration that runs: FAST_TRAIN's caps applied to N_HIDDEN and LM_TOP_K, with the
    source recorded as "FAST_TRAIN" (the limits that are not settings are read from `FAST_TRAIN`
    by the stages that apply them)."""
    if not cfg.general.fast_train:
        return cfg
    caps = {"N_HIDDEN": FAST_TRAIN.n_hidden, "LM_TOP_K": FAST_TRAIN.lm_top_k}
    changed = {k: v for k, v in caps.items() if cfg.value(k) > v}
    if not changed:
        return cfg
    out = cfg.with_values(**changed)
    sources = dict(cfg.sources)
    for k in changed:
        sources[k] = f"FAST_TRAIN (was {format_value(cfg.value(k))} from {cfg.sources.get(k, 'default')})"
    return dataclasses.replace(out, sources=sources)


def _cross_checks(cfg: Config) -> list[str]:
    problems = []
    if cfg.data.min_duration >= cfg.data.max_duration:
        problems.append(f"MIN_DURATION={cfg.data.min_duration:g} must be smaller than "
                        f"MAX_DURATION={cfg.data.max_duration:g}")
    if cfg.split_files() and cfg.data.csv_list:
        problems.append(f"CSV_LIST={cfg.data.csv_list} and TRAIN_FILES/DEV_FILES/TEST_FILES are both "
                        f"set: the csv importer reads one or the other (put a 'split' column in "
                        f"CSV_LIST, or list its clips in TRAIN_FILES/DEV_FILES/TEST_FILES)")
    return problems


def iter_rows(cfg: Config) -> Iterator[tuple[str, str, str, str]]:
    """(name, value, source, help) for the `config` command."""
    for spec in SPECS:
        yield spec.env, format_value(cfg.value(spec.env)), cfg.sources.get(spec.env, "default"), spec.help


def markdown_table() -> str:
    """The README's variable table, generated from the field metadata."""
    lines = ["| variable | default | valid values | meaning |", "|---|---|---|---|"]
    for spec in SPECS:
        default = format_value(spec.default) or "(empty)"
        lines.append(f"| `{spec.env}` | `{default}` | {spec.valid_form()} | {spec.help} |")
    return "\n".join(lines) + "\n"
