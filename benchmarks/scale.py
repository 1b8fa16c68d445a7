"""Scale: how each stage's cost grows with the number of corpus rows (issue #14).

Builds Common Voice-shaped inputs of the given row counts and runs the real stages or their real
inner functions on them, each stage of each size in its own (spawned) child process, so the peak
RSS is that stage's own. Prints, per stage and size, wall seconds, seconds per 1 000 rows and peak
RSS, and per stage the growth ratio (seconds per 1 000 rows at the largest size / at the smallest;
≤ 1 means linear or better).

    python benchmarks/scale.py --sizes 5000,50000 --json out.json
    python benchmarks/scale.py --sizes 10000,100000,700000 --stages import_plan,splits,train_input

The inputs (see `build_corpus`): `validated.tsv` with the current CV columns (client_id, path,
sentence_id, sentence, sentence_domain, up_votes, down_votes, age, gender, accents, variant, locale,
segment), no official splits (so the splits are rebuilt: speaker- and sentence-disjoint), many
speakers with a long-tailed number of clips each, Zipf-distributed words from a vocabulary that grows
with the corpus, sentence lengths and clip durations like CV's (about 10 words; log-normal durations
around 5 s). Some sentences are read by several speakers and some clips have identical audio.
Audio: the mp3 conversion is measured by `benchmarks/import_speed.py`, so the import stages here run
everything after it (the conversion results are made from the rows: durations from the
distribution, a content hash per clip, a few identical ones); the wavs the training input pipeline
reads are hard links to three short clips (2, 3 and 4 s, picked by transcript length), so disk use
stays small, and the page cache always holds them (a real corpus is read from disk).

Seconds are wall seconds of the timed part (the best of 3 runs for the stages that take seconds);
the JSON's `cpu_seconds`/`cpu_growth` give the stage process's CPU time too, which a machine shared
with other work disturbs less. Peak RSS includes the child's imports (TensorFlow: ≈ 0.5 GB).

Stages (what is timed; input set-up in the child is not):
  import_plan  common_voice.list_rows on the TSV + listing dedup
  dedup        duplicate-audio removal (by content hash) + the per-sentence limit
  splits       choose_splits (speaker+sentence policy)
  csv          the three split CSVs, the quarantine CSV, the import report, heldout_sentences.txt
  alphabet     alphabet.txt + the alphabet report over every CSV row
  lm           the lm stage's work: LM text (train transcripts + a text file of 10 lines per row)
               minus dev/test sentences, KenLM lmplz/filter/build_binary, the scorer
  train_input  load_samples (probe every wav) + the per-set tensors + plan + one epoch of the
               tf.data pipeline (wav decode + MFCC), the model step replaced by a reduce
  dev_loss     load_samples + one dev loss pass (Trainer.eval_step's CTC loss; the model is a
               stand-in projection, its cost per frame being a constant of the model)
  test_decode  beam search with the scorer over the test set (model outputs made peaked from
               the transcripts, like a trained model's) + WER/CER + the test report JSON
  lm_optimize  two trials of the alpha/beta search on the dev set
  package      a tar.xz of the files that grow with the corpus (scorer, reports, CSVs)
"""

from __future__ import annotations

import argparse
import errno
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.fsutil import write_text

STAGES = ("import_plan", "dedup", "splits", "csv", "alphabet", "lm", "train_input", "dev_loss",
          "test_decode", "lm_optimize", "package")
CV_COLUMNS = ("client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes",
              "down_votes", "age", "gender", "accents", "variant", "locale", "segment")
LANG = "fr"
KEY = "common_voice"
CLIP_SECONDS = (2.0, 3.0, 4.0)
LETTERS = "abcdefghijklmnopqrstuvwxyzéèàçêô"
LM_LINES_PER_ROW = 10
DECODE_BEAM = 16


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------
def _vocabulary(n_words: int, rng: Any) -> list[str]:
    """Distinct pseudo-French words of 2-12 letters."""
    import numpy as np

    letters = np.array(list(LETTERS))
    p = np.linspace(2.0, 0.2, len(letters))
    p /= p.sum()
    words: set[str] = set()
    while len(words) < n_words:
        lens = rng.integers(2, 13, size=n_words)
        chars = rng.choice(letters, size=(n_words, 12), p=p)
        words.update("".join(row[:k]) for row, k in zip(chars, lens, strict=True))
    return sorted(words)[:n_words]


def build_corpus(root: Path, n: int, seed: int = 0) -> None:
    """A data dir at `root` holding a CV-shaped corpus of `n` rows (see the module docstring)."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(seed + n)
    vocab = _vocabulary(20000 + n // 4, rng)  # Heaps: the vocabulary grows with the corpus
    ranks = np.arange(1, len(vocab) + 1)
    zipf = 1.0 / ranks
    zipf /= zipf.sum()
    n_sent = int(n * 0.8)  # CV: most sentences read once, some several times
    n_words = np.clip(rng.normal(10, 3.5, n_sent).round().astype(int), 2, 22)
    flat = rng.choice(len(vocab), size=int(n_words.sum()), p=zipf)
    sentences, pos = [], 0
    for k in n_words:
        words = [vocab[i] for i in flat[pos:pos + k]]
        pos += k
        s = " ".join(words)
        sentences.append(s[0].upper() + s[1:] + ".")
    sent_of_row = np.concatenate([np.arange(n_sent), rng.integers(0, n_sent, n - n_sent)])
    rng.shuffle(sent_of_row)
    # speakers: a long tail (CV: a few speakers read thousands of clips, most read a few)
    n_spk = max(20, n // 10)
    spk_w = 1.0 / np.arange(1, n_spk + 1) ** 0.9
    spk_of_row = rng.choice(n_spk, size=n, p=spk_w / spk_w.sum())
    cv = root / "extracted" / KEY / "source" / "cv-corpus-20.0-2024-12-06" / LANG
    (cv / "clips").mkdir(parents=True, exist_ok=True)
    with open(cv / "validated.tsv", "w", encoding="utf-8") as fh:
        fh.write("\t".join(CV_COLUMNS) + "\n")
        for i in range(n):
            sid = int(sent_of_row[i])
            fh.write("\t".join((f"{int(spk_of_row[i]):064x}", f"common_voice_{LANG}_{i}.mp3",
                                f"{sid:064x}", sentences[sid], "", "2", "0", "", "", "", "",
                                LANG, "")) + "\n")
    # the wavs the training pipeline reads: hard links to three clips
    wavs = root / "extracted" / KEY / "wavs"
    wavs.mkdir(parents=True, exist_ok=True)
    clips = []
    for d in CLIP_SECONDS:
        t = np.arange(int(16000 * d)) / 16000.0
        x = 0.1 * np.sin(2 * np.pi * 220 * t) + 0.02 * rng.standard_normal(t.size)
        p = root / f"clip_{d:g}s.wav"
        sf.write(p, (x * 32767).astype(np.int16), 16000, subtype="PCM_16")
        clips.append(p)
    stems, copies = [c.stem for c in clips], [0] * len(clips)
    for i in range(n):
        sid = int(sent_of_row[i])
        link = wavs / f"common_voice_{LANG}_{i}.wav"
        if link.exists():
            continue
        k = _clip_index(len(sentences[sid]))
        try:
            os.link(clips[k], link)
        except OSError as exc:  # ext4 allows 65 000 links to a file: link to a fresh copy
            if exc.errno != errno.EMLINK:
                raise
            copies[k] += 1
            clips[k] = Path(shutil.copy(clips[k], root / f"{stems[k]}.{copies[k]}.wav"))
            os.link(clips[k], link)
    # LM text: 10 lines per row from the same word distribution ("a large text")
    (root / "sources" / "lm").mkdir(parents=True, exist_ok=True)
    m = LM_LINES_PER_ROW * n
    lens = np.clip(rng.normal(12, 5, m).round().astype(int), 1, 40)
    flat = rng.choice(len(vocab), size=int(lens.sum()), p=zipf)
    with open(root / "sources" / "lm" / "text.txt", "w", encoding="utf-8") as fh:
        pos = 0
        for k in lens:
            fh.write(" ".join(vocab[i] for i in flat[pos:pos + k]) + "\n")
            pos += k
    (root / "BUILT").write_text(str(n))


def _clip_index(chars: int) -> int:
    """The clip whose 20 ms frames hold the transcript (CTC: a frame per character + repeats)."""
    return 0 if chars <= 70 else 1 if chars <= 120 else 2


# ---------------------------------------------------------------------------------------------
# Stage bodies (run in a child process)
# ---------------------------------------------------------------------------------------------
def _env(root: Path) -> tuple[Any, Any, Any]:
    from importers.base import ImportContext
    from pipeline.config import load_config
    from pipeline.langs import load_pack
    from pipeline.paths import Paths

    environ = {"MODEL_LANGUAGE": LANG, "CORPORA": KEY, "LM_MEMORY": "500M", "LM_PRUNE": "0|0|1",
               "WORKERS": "2", "RANDOM_SEED": "1"}
    cfg = load_config(environ=environ, data_dir=root)
    paths = Paths.at(root)
    return cfg, paths, ImportContext(cfg, paths, load_pack(LANG, root))


def _rows(ctx: Any) -> Any:
    from importers import common_voice

    return common_voice.list_rows(ctx.paths.corpus_dir(KEY) / "source", ctx)


def _results(rows: list[Any], seed: int = 0) -> list[Any]:
    """What the conversion step returns for `rows`: samples (durations log-normal around 5 s, the
    transcript normalized as the import does) and about 3 % rejections; 0.5 % share their audio."""
    import hashlib

    import numpy as np

    from importers.base import TOO_SHORT, Sample, rejection_from_row

    rng = np.random.default_rng(seed)
    dur = np.clip(rng.lognormal(np.log(4.8), 0.35, len(rows)), 0.5, 15.0)
    fate = rng.random(len(rows))
    out: list[Any] = []
    for i, r in enumerate(rows):
        if fate[i] < 0.03:
            out.append(rejection_from_row(r, TOO_SHORT, "0.40s < MIN_DURATION 0.5s", r.transcript, 0.4))
            continue
        same = i - 1 if fate[i] > 0.995 and i else i
        h = hashlib.sha1(rows[same].key.encode()).hexdigest()
        text = r.transcript.lower().rstrip(".")
        out.append(Sample(key=r.key, wav_rel=r.wav_rel, wav_filesize=44 + int(32000 * dur[i]),
                          transcript=text, duration=float(dur[i]), speaker=r.speaker, split=r.split,
                          content_hash=h, origin=r.origin))
    return out


def _evict_cache() -> None:
    """Stream 64 MB (twice a large L3) through the CPU cache. In an import the clips' conversion
    runs between listing and dedup, so the rows are never cache-hot when dedup and splits start;
    without this the small sizes would be timed with their rows still in cache."""
    import numpy as np

    np.ones(8 << 20).sum()


def _import_until(ctx: Any, stage: str) -> dict[str, Any]:
    """The import's steps after conversion, up to `stage` (timed from there on)."""
    from importers import engine

    state: dict[str, Any] = {}
    t = time.perf_counter()
    rl = _rows(ctx)
    rejections = list(rl.rejected)
    unique = engine._dedupe_listings(rl, rejections)
    if stage == "import_plan":
        return {"seconds": time.perf_counter() - t}
    results = _results(unique)
    _evict_cache()
    t = time.perf_counter()
    samples = engine._dedupe_audio(results, rl.fixed_splits, rejections)
    samples, limited = engine._limit_per_sentence(samples, 3, 1)
    rejections += limited
    if stage == "dedup":
        return {"seconds": time.perf_counter() - t}
    _evict_cache()
    t = time.perf_counter()
    splits, overlap, info = engine.choose_splits(samples, rl.official_splits, 1, "speaker+sentence", 0.5)
    rejections += overlap
    timed = time.perf_counter() - t
    if stage == "splits":
        return {"seconds": timed}
    state.update(rl=rl, samples=samples, splits=splits, rejections=rejections, info=info)
    return state


def _stage_csv(cfg: Any, paths: Any, ctx: Any) -> float:
    from importers import engine
    from pipeline.corpus_csv import SPLITS
    from pipeline.fsutil import write_json
    from pipeline.stages.import_data import write_heldout

    st = _import_until(ctx, "csv")
    t = time.perf_counter()
    for sp in SPLITS:
        engine.write_csv(paths.corpus_csv(KEY, sp), st["splits"][sp])
    rejections = st["rejections"]
    rejections.sort(key=lambda r: (r.reason, r.key))
    engine.write_quarantine(paths.corpus_quarantine(KEY), rejections)
    report = engine.ImportReport(corpus=KEY, language=LANG, source="scale benchmark")
    report.split_method = st["info"]

    class _Rules:  # folded_summary only reads the alphabet
        alphabet_set = frozenset()

    settings = engine.RowSettings(corpus_dir=paths.corpus_dir(KEY), rules=_Rules(),  # type: ignore[arg-type]
                                  min_duration=0.5, max_duration=15.0)
    engine._fill_report(report, st["rl"], st["samples"], st["splits"], rejections, settings, cfg)
    write_json(paths.corpus_report(KEY), report.to_json())
    write_heldout(cfg, paths)
    return time.perf_counter() - t


def _stage_alphabet(cfg: Any, paths: Any, ctx: Any) -> float:
    from pipeline.text.alphabet_report import build_alphabet_report
    from pipeline.text.normalize import target_alphabet

    t = time.perf_counter()
    alphabet = target_alphabet(ctx.pack)
    alphabet.write(paths.alphabet, header=["scale benchmark"])
    report = build_alphabet_report(cfg, paths, alphabet, LANG)
    assert report["rows_checked"] > 0
    return time.perf_counter() - t


def _stage_lm(cfg: Any, paths: Any, ctx: Any) -> float:
    from pipeline.fsutil import write_json
    from pipeline.lm.build import build_language_model

    tmp = Path(tempfile.mkdtemp(dir=paths.root))
    t = time.perf_counter()
    report = build_language_model(cfg, paths, ctx.pack, tmp)
    write_json(paths.lm_report, report)
    took = time.perf_counter() - t
    shutil.rmtree(tmp, ignore_errors=True)
    return took


def _samples(cfg: Any, paths: Any, split: str) -> Any:
    from pipeline.model.dataset import load_samples
    from pipeline.text.alphabet import Alphabet

    return load_samples([paths.corpus_csv(KEY, split)], Alphabet.from_file(paths.alphabet), split)


def _batch_spec() -> tuple[Any, ...]:
    """A batch of `make_dataset` (features, frame counts, labels, label counts), any size."""
    import tensorflow as tf

    from pipeline.model.geometry import N_INPUT

    return (tf.TensorSpec([None, None, N_INPUT], tf.float32), tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32))


def _stage_train_input(cfg: Any, paths: Any, ctx: Any) -> float:
    import tensorflow as tf

    from pipeline.model.dataset import make_dataset, plan_batches, replica_batch_order

    t = time.perf_counter()
    samples = _samples(cfg, paths, "train")
    samples.tensors  # noqa: B018 (once per set, in Trainer.setup)
    t_epoch = time.perf_counter()  # what every epoch does before its first step
    plan = plan_batches(samples.frames, cfg.train.batch_size, 0.0, 1)
    order, _steps = replica_batch_order(len(plan), 1, 0, 1)
    ds = make_dataset(samples, order, plan)
    next(iter(ds))
    epoch_overhead = time.perf_counter() - t_epoch
    EXTRA.update(epoch_overhead_seconds=round(epoch_overhead, 3),
                 once_per_run_seconds=round(t_epoch - t, 3), train_samples=len(samples))

    # traced once, like the Trainer's step (a plain tf.function would be traced again for each new
    # padded batch shape, a cost that grows with the number of distinct shapes, not the model's)
    @tf.function(input_signature=[_batch_spec()])
    def step(batch: Any) -> Any:  # stand-in for the model step
        feats, flen, labels, llen = batch
        return tf.reduce_sum(feats) + tf.cast(tf.reduce_sum(llen) + tf.reduce_sum(flen), tf.float32)

    n = 0
    for batch in ds:
        step(batch)
        n += int(batch[0].shape[0])
    assert n == len(samples), (n, len(samples))
    return time.perf_counter() - t


def _stage_dev_loss(cfg: Any, paths: Any, ctx: Any) -> float:
    import tensorflow as tf

    from pipeline.model.ctc import eval_sums
    from pipeline.model.dataset import make_dataset, plan_batches
    from pipeline.model.geometry import N_INPUT
    from pipeline.text.alphabet import Alphabet

    alphabet = Alphabet.from_file(paths.alphabet)
    # the stand-in model: one projection of the features to the classes (the network's own cost
    # per frame is a constant of the model, measured by benchmarks/train_speed.py)
    proj = tf.constant(tf.random.stateless_normal([N_INPUT, alphabet.num_classes], [1, 2]))

    @tf.function(input_signature=[_batch_spec()])
    def eval_step(batch: Any) -> Any:  # Trainer.eval_step with the stand-in model
        feats, flen, labels, llen = batch
        logits = tf.transpose(tf.einsum("btf,fc->btc", feats, proj), [1, 0, 2])  # time-major
        return eval_sums(labels, logits, llen, flen, False)

    t = time.perf_counter()
    dev = _samples(cfg, paths, "dev")
    plan = plan_batches(dev.frames, cfg.train.batch_size, 0.0, None)
    total = count = 0.0
    for batch in make_dataset(dev, list(range(len(plan))), plan):
        s, c, _, _ = eval_step(batch)
        total += float(s)
        count += float(c)
    assert count > 0
    return time.perf_counter() - t


def _peaked_outputs(cfg: Any, paths: Any, split: str) -> tuple[list[Any], list[str], list[str]]:
    """Softmax outputs like a trained model's: each label on its own frames, blanks between,
    some probability mass spread (so the beam has choices)."""
    import numpy as np

    from pipeline.corpus_csv import read_rows
    from pipeline.text.alphabet import Alphabet

    alphabet = Alphabet.from_file(paths.alphabet)
    rng = np.random.default_rng(3)
    probs, refs, wavs = [], [], []
    c = alphabet.num_classes
    for row in read_rows(paths.corpus_csv(KEY, split)):
        ids = alphabet.encode(row.transcript)
        frames = max(2 * len(ids) + 2, 50)
        p = np.full((frames, c), 0.02 / c, np.float32)
        p[:, c - 1] += 0.98
        at = np.linspace(1, frames - 2, len(ids)).astype(int)
        p[at, c - 1] = 0.1
        p[at, ids] += 0.6 + 0.3 * rng.random(len(ids)).astype(np.float32)
        p /= p.sum(axis=1, keepdims=True)
        probs.append(p)
        refs.append(row.transcript)
        wavs.append(str(row.wav))
    return probs, refs, wavs


def _stage_test_decode(cfg: Any, paths: Any, ctx: Any) -> float:
    from pipeline.fsutil import write_json
    from pipeline.lm.decode import Decoder, greedy_decode
    from pipeline.report.metrics import best_median_worst, score_samples, wer_cer
    from pipeline.text.alphabet import Alphabet

    alphabet = Alphabet.from_file(paths.alphabet)
    probs, refs, wavs = _peaked_outputs(cfg, paths, "test")
    t = time.perf_counter()
    decoder = Decoder(alphabet, paths.scorer, cfg.lm.lm_alpha, cfg.lm.lm_beta, DECODE_BEAM)
    greedy = [greedy_decode(p, alphabet) for p in probs]
    decoded = decoder.decode_batch(probs, 2)
    wer, cer = wer_cer(refs, decoded)
    samples = score_samples(wavs, refs, greedy, decoded)
    write_json(paths.test_report(KEY), {"wer": wer, "cer": cer, **best_median_worst(samples),
                                        "all": [s.as_dict() for s in samples]})
    return time.perf_counter() - t


def _stage_lm_optimize(cfg: Any, paths: Any, ctx: Any) -> float:
    from pipeline.config import LmRange
    from pipeline.lm.optimize import optimize
    from pipeline.text.alphabet import Alphabet

    alphabet = Alphabet.from_file(paths.alphabet)
    probs, refs, _ = _peaked_outputs(cfg, paths, "dev")
    t = time.perf_counter()
    optimize(list(zip(probs, refs, strict=True)), alphabet, paths.scorer, LmRange(2.0, 2.0, 2),
             cfg.lm.lm_alpha, cfg.lm.lm_beta, DECODE_BEAM, seed=1, workers=2)
    return time.perf_counter() - t


def _stage_package(cfg: Any, paths: Any, ctx: Any) -> float:
    from pipeline.corpus_csv import SPLITS
    from pipeline.export.package import write_archive

    members = [(paths.scorer, "kenlm.scorer"), (paths.alphabet, "alphabet.txt"),
               (paths.lm_report, "lm_report.json"), (paths.corpus_report(KEY), "import_report.json"),
               *[(paths.corpus_csv(KEY, sp), f"{sp}.csv") for sp in SPLITS]]
    if paths.test_report(KEY).is_file():
        members.append((paths.test_report(KEY), "test_report.json"))
    t = time.perf_counter()
    write_archive(paths.root / "scale-package.tar.xz", members)
    return time.perf_counter() - t


# Stages that take seconds: the best of REPEATS runs, so one stall of the (shared) machine does not
# decide the growth ratio. Each run does the same work on the same inputs.
# per-stage figures besides the timing (train_input: the per-epoch serial part), sent to the parent
EXTRA: dict[str, Any] = {}
REPEATED = frozenset({"import_plan", "dedup", "splits", "csv", "alphabet"})
REPEATS = 3


def _run_stage(stage: str, root: str, conn: Any) -> None:
    """Child process: run `stage` on the data dir, send back seconds and peak RSS (VmHWM)."""
    import logging

    logging.basicConfig(level=logging.WARNING)
    try:
        cfg, paths, ctx = _env(Path(root))
        best = cpu_best = float("inf")
        runs, total = 0, 0.0
        # fast stages are repeated until their timed part adds up to a second (at most 9 runs)
        while runs < (REPEATS if stage in REPEATED else 1) or (
                stage in REPEATED and runs < 9 and total < 1.0):
            runs += 1
            cpu = _cpu_seconds()
            if stage in ("import_plan", "dedup", "splits"):
                seconds = _import_until(ctx, stage)["seconds"]
            else:
                seconds = globals()[f"_stage_{stage}"](cfg, paths, ctx)
            best = min(best, seconds)
            total += seconds
            cpu_best = min(cpu_best, _cpu_seconds() - cpu)
        if EXTRA:
            print(f"    {stage}: {EXTRA}", flush=True)
        conn.send({"seconds": best, "cpu_seconds": cpu_best, "peak_rss_mb": _vm_hwm_mb(),
                   "extra": EXTRA})
    except BaseException as exc:  # reported by the parent
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
        raise


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (lmplz, decoder workers)."""
    import resource

    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ch.ru_utime + ch.ru_stime


def _vm_hwm_mb() -> float:
    """This process's peak resident set (Linux VmHWM), MB."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(stage: str, root: Path) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")  # a fresh process: its peak RSS is the stage's own
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_run_stage, args=(stage, str(root), child))
    t = time.perf_counter()
    p.start()
    child.close()
    try:
        res = parent.recv()
    except EOFError:
        res = {"error": "the child process died"}
    p.join()
    if "error" in res:
        raise SystemExit(f"stage {stage} failed: {res['error']}")
    res["wall_seconds"] = time.perf_counter() - t
    return res


def growth(per_row: dict[int, float]) -> float:
    """Per-row cost at the largest size / at the smallest."""
    lo, hi = min(per_row), max(per_row)
    return per_row[hi] / per_row[lo] if per_row[lo] > 0 else float("inf")


def run(sizes: list[int], stages: list[str], work: Path, json_out: Path | None = None,
        resume: bool = False) -> dict[str, Any]:
    """Measure `stages` at `sizes`. With `resume`, the figures already in `json_out` are kept and
    not measured again (a 700 k-row run takes hours: it can be stopped and continued, or done in
    parts); `json_out` is rewritten after every measurement."""
    out: dict[str, Any] = {"stages": {s: {"growth": None, "sizes": {}} for s in stages},
                           "machine": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()},
                           # CPU seconds of the stage's process and its finished children (lmplz,
                           # decoder workers; set-up included): less sensitive to a loaded machine
                           "cpu_seconds": {}, "cpu_growth": {},
                           # train_input: plan + dataset + first batch, the serial part of an epoch
                           "extra": {}}
    if resume and json_out and json_out.is_file():
        before = json.loads(json_out.read_text(encoding="utf-8"))
        for key in ("cpu_seconds", "extra"):
            out[key].update(before.get(key, {}))
        for stage, d in before.get("stages", {}).items():
            out["stages"].setdefault(stage, {"growth": None, "sizes": {}})["sizes"].update(d["sizes"])
        print(f"resuming {json_out}: " + ", ".join(
            f"{st} {','.join(d['sizes'])}" for st, d in out["stages"].items() if d["sizes"]), flush=True)
    for n in sizes:
        root = work / f"n{n}"
        if not (root / "BUILT").is_file():
            shutil.rmtree(root, ignore_errors=True)
            t = time.perf_counter()
            build_corpus(root, n)
            print(f"built {n} rows in {time.perf_counter() - t:.1f}s -> {root}", flush=True)
        for stage in STAGES:
            if stage not in stages and (not _needed(stage, stages) or _made(stage, root)):
                continue
            if str(n) in out["stages"].get(stage, {}).get("sizes", {}) and (
                    stage in stages or _made(stage, root)):
                continue  # measured in an earlier run (--resume)
            res = measure(stage, root)
            if stage in stages:
                sec = round(res["seconds"], 5)  # sub-millisecond: the small sizes of fast stages
                out["stages"][stage]["sizes"][str(n)] = {
                    "seconds": sec, "seconds_per_1k_rows": round(1000 * sec / n, 6),
                    "peak_rss_mb": round(res["peak_rss_mb"], 1)}
                out["cpu_seconds"].setdefault(stage, {})[str(n)] = round(res["cpu_seconds"], 3)
                if res.get("extra"):
                    out["extra"].setdefault(stage, {})[str(n)] = res["extra"]
                print(f"  {n:>8} {stage:<12} {res['seconds']:9.2f}s  "
                      f"{1000 * res['seconds'] / n:8.4f}s/1k  {res['peak_rss_mb']:8.0f} MB  "
                      f"(cpu {res['cpu_seconds']:.2f}s, load {os.getloadavg()[0]:.1f})", flush=True)
                if json_out:
                    _finish(out, json_out)
    _finish(out, json_out)
    all_sizes = sorted({int(k) for d in out["stages"].values() for k in d["sizes"]})
    print(table(out, all_sizes))
    print("cpu growth: " + ", ".join(f"{k} {v}" for k, v in out["cpu_growth"].items()))
    return out


def _finish(out: dict[str, Any], json_out: Path | None) -> None:
    """Growth ratios over the sizes measured so far; the JSON written atomically."""
    for stage in out["stages"]:
        sz = out["stages"][stage]["sizes"]
        # from the rounded figures written, so the JSON is self-consistent
        out["stages"][stage]["growth"] = round(growth({int(k): v["seconds"] / int(k) for k, v in sz.items()}), 3) \
            if sz else None
        cpu = out["cpu_seconds"].get(stage, {})
        out["cpu_growth"][stage] = round(growth({int(k): v / int(k) for k, v in cpu.items()}), 3) if cpu else None
    out["machine"]["loadavg_end"] = os.getloadavg()
    if json_out:
        write_text(json_out, json.dumps(out, indent=1) + "\n")


# outputs a stage reads, made by earlier stages (run, unreported, when those are not selected)
NEEDS = {"alphabet": ("csv",), "lm": ("csv", "alphabet"), "train_input": ("csv", "alphabet"),
         "dev_loss": ("csv", "alphabet"), "test_decode": ("csv", "alphabet", "lm"),
         "lm_optimize": ("csv", "alphabet", "lm"), "package": ("csv", "alphabet", "lm")}


def _made(stage: str, root: Path) -> bool:
    """True when an unselected earlier stage's output is already in the data dir (a kept --work)."""
    out = {"csv": root / "extracted" / KEY / f"{KEY}_train.csv", "alphabet": root / "models" / "alphabet.txt",
           "lm": root / "lm" / "kenlm.scorer"}.get(stage)
    return out is not None and out.is_file()


def _needed(stage: str, selected: list[str]) -> bool:
    return any(stage in NEEDS.get(s, ()) for s in selected)


def table(out: dict[str, Any], sizes: list[int]) -> str:
    head = f"{'stage':<12}" + "".join(f"{f'{n} rows: s':>16}{'s/1k':>9}{'MB':>7}" for n in sizes) \
        + f"{'growth':>8}"
    lines = [head]
    for stage, d in out["stages"].items():
        cells = ""
        for n in sizes:
            c = d["sizes"].get(str(n))
            cells += f"{c['seconds']:>16.2f}{c['seconds_per_1k_rows']:>9.4f}{c['peak_rss_mb']:>7.0f}" \
                if c else " " * 32
        lines.append(f"{stage:<12}{cells}{d['growth'] if d['growth'] is not None else float('nan'):>8.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="5000,50000", help="row counts, comma-separated")
    ap.add_argument("--stages", default=",".join(STAGES), help=f"subset of {','.join(STAGES)}")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--work", type=Path, help="where the corpora are built (kept; default: a temp dir)")
    ap.add_argument("--resume", action="store_true",
                    help="keep the figures already in --json and measure only the missing ones")
    a = ap.parse_args(argv)
    try:
        sizes = sorted(int(s) for s in a.sizes.split(",") if s.strip())
    except ValueError:
        ap.error(f"--sizes {a.sizes!r}: expected comma-separated row counts like 5000,50000")
    stages = [s.strip() for s in a.stages.split(",") if s.strip()]
    bad = [s for s in stages if s not in STAGES]
    if bad or not sizes or min(sizes) < 100:
        ap.error(f"--stages: unknown {', '.join(bad)} (known: {', '.join(STAGES)})" if bad else
                 "--sizes: at least one size, each >= 100 rows")
    if a.resume and not a.json:
        ap.error("--resume needs --json (the file with the figures to keep)")
    if a.work:
        a.work.mkdir(parents=True, exist_ok=True)
        run(sizes, stages, a.work, a.json, a.resume)
    else:
        with tempfile.TemporaryDirectory(prefix="ds-scale-") as tmp:
            run(sizes, stages, Path(tmp), a.json, a.resume)
    return 0


if __name__ == "__main__":
    sys.exit(main())
