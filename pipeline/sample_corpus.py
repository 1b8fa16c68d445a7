"""Synthesize a small Common-Voice-format corpus with espeak-ng, so the pipeline can run end to end
without downloading a real corpus.

Output: one `.tar.gz` laid out like a Common Voice release::

    cv-corpus-0.0-sample/<lang>/validated.tsv, train.tsv, dev.tsv, test.tsv, invalidated.tsv, other.tsv
    cv-corpus-0.0-sample/<lang>/clips/common_voice_<lang>_<NNNNNN>.mp3   (48 kHz mono mp3)

Speech comes from libespeak-ng 1.52 bundled in the `espeakng-loader` wheel, called through ctypes.
A "speaker" is a voice setting: an espeak-ng variant (`fr+m3`, `fr+Annie`, ...) with a speed bucket
and a pitch bucket; `client_id` is a hash of it. The official dev and test splits use variants and
sentences that train never sees, so they measure generalization to new voices and new sentences.

The archive is byte-identical for the same (lang, clips, seed): the plan comes from one seeded
generator, each clip's noise from its own seed, clips are rendered in fixed blocks each in a fresh
process (libespeak-ng carries state from clip to clip) and written in plan order whatever worker
finished first, and tar/gzip headers carry fixed times and owners.
"""

from __future__ import annotations

import ctypes
import gzip
import hashlib
import io
import logging
import multiprocessing
import os
import tarfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import ConfigError, MissingInputError, PipelineError
from pipeline.fsutil import atomic_write
from pipeline.langs import load_pack
from pipeline.progress import Progress

log = logging.getLogger(__name__)

VERSION_DIR = "cv-corpus-0.0-sample"
CV_COLUMNS = ("client_id", "path", "sentence", "up_votes", "down_votes", "age", "gender", "accents",
              "variant", "locale", "segment")
SPLIT_FILES = ("train", "dev", "test")
SAMPLE_RATE = 48_000            # Common Voice mp3s are 48 kHz mono
ESPEAK_RATE = 22_050
# Fixed tar metadata so the archive does not depend on when or by whom it was made.
TAR_MTIME = 1_600_000_000

# Variants that are sound effects rather than voices (unvoiced whisper, distortion, monotone robots):
# a held-out test voice drawn from them would measure the effect, not the model.
EFFECT_VARIANTS = frozenset({"whisper", "whisperf", "Demonic", "croak", "UniRobot", "anikaRobot"})
PROBE_SENTENCE = {
    "fr": "le petit chat dort sur le canapé rouge, puis il mange.",
    "it": "il piccolo gatto dorme sul divano rosso, poi mangia.",
    "en": "the little cat sleeps on the red sofa, then it eats.",
}
# Two settings count as the same voice when their probe audio has the same length within this
# fraction and log-spectrogram correlation of at least this (espeak-ng silently falls back to the base
# voice for unknown names; renderings of one voice correlate at >= 0.996, see `_VoiceRef`).
SAME_VOICE_LENGTH = 0.005
SAME_VOICE_CORRELATION = 0.993

RATE_WPM = (135, 205)           # espeak-ng default is 175
PITCH = (25, 75)                # espeak-ng 0-100, default 50
PITCH_RANGE = (30, 80)          # intonation range 0-100, default 50
SNR_DB = (22.0, 40.0)
PEAK = (0.3, 0.9)
SILENCE_S = (0.08, 0.35)
DEV_FRACTION = TEST_FRACTION = 0.1
HELDOUT_VOICES_MAX = 5          # per held-out split
ROBOT_FAMILIES = ("robosoft", "RicishayMax")   # never held out (see mild_variants)

# espeak-ng C API constants (speak_lib.h)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_RATE, _ESPEAK_PITCH, _ESPEAK_RANGE = 1, 3, 4
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                   ctypes.c_void_p)


# --- espeak-ng -------------------------------------------------------------------------------------
class Espeak:
    """libespeak-ng from the `espeakng-loader` wheel, synchronous mode (one per process)."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError:
            raise MissingInputError("the sample corpus needs the PyPI package espeakng-loader "
                                    "(pip install espeakng-loader); it bundles libespeak-ng") from None
        self.data_path = Path(espeakng_loader.get_data_path())
        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(self.data_path).encode(), 0)
        if rate != ESPEAK_RATE:
            raise PipelineError(f"espeak_Initialize returned {rate}, expected {ESPEAK_RATE} Hz "
                                f"(data path {self.data_path})")
        self._chunks: list[np.ndarray] = []
        self._callback = _SYNTH_CALLBACK(self._collect)  # keep a reference: C holds the pointer
        self._lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: ctypes._Pointer, n: int, events: int) -> int:
        if wav and n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def variant_file(self, name: str) -> Path:
        return self.data_path / "voices" / "!v" / name

    def variants(self) -> list[str]:
        """Variant names shipped with the data (`voices/!v/*`), sorted."""
        return sorted(p.name for p in (self.data_path / "voices" / "!v").iterdir() if p.is_file())

    def synth(self, text: str, voice: str, rate: int = 175, pitch: int = 50,
              pitch_range: int = 50) -> np.ndarray:
        """Speak `text` with `voice` (e.g. "fr+m3"); int16 samples at 22.05 kHz."""
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ConfigError(f"espeak-ng has no voice {voice!r}")
        # Every parameter is set for every clip so no setting leaks from the previous one (other
        # synthesis state does: see BLOCK_CLIPS).
        self._lib.espeak_SetParameter(_ESPEAK_RATE, int(rate), 0)
        self._lib.espeak_SetParameter(_ESPEAK_PITCH, int(pitch), 0)
        self._lib.espeak_SetParameter(_ESPEAK_RANGE, int(pitch_range), 0)
        self._chunks = []
        data = text.encode("utf-8")
        err = self._lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, _ESPEAK_CHARS_UTF8, None, None)
        self._lib.espeak_Synchronize()
        if err != 0 or not self._chunks:
            raise PipelineError(f"espeak-ng failed (code {err}) on {text!r} with voice {voice!r}")
        return np.concatenate(self._chunks)


_ENGINE: Espeak | None = None
# libespeak-ng keeps synthesis state in C statics (e.g. the pitch-flutter phase in wavegen.c) that
# neither espeak_Initialize nor espeak_ng_SetRandSeed resets: a clip's samples depend on everything
# the process spoke before. Clips are therefore rendered in fixed blocks, each in a fresh process,
# so the archive is the same whatever the number of workers.
BLOCK_CLIPS = 20


def engine() -> Espeak:
    """This process's espeak-ng (initialized on first use; the library is process-global)."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = Espeak()
    return _ENGINE


class _VoiceRef:
    """A probe rendering reduced to a log band-energy spectrogram, for comparing voices.

    Waveforms cannot be compared directly: libespeak-ng's pitch flutter carries over from clip to
    clip, so the same voice never renders the same samples twice. Its log spectrogram in 24 bands
    does: two renderings of one voice correlate at >= 0.996, distinct variants mostly far lower.
    """

    def __init__(self, audio: np.ndarray):
        self.raw = audio.tobytes()
        self.length = len(audio)
        x = audio.astype(np.float32) / 32768.0
        if len(x) < 1024:
            x = np.pad(x, (0, 1024 - len(x)))
        frames = np.lib.stride_tricks.sliding_window_view(x, 512)[::256] * np.hanning(512)
        power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        edges = np.unique(np.geomspace(2, 256, 25).astype(int))
        self.spec = np.log(np.add.reduceat(power, edges, axis=1) + 1e-8)

    def matches(self, other: _VoiceRef) -> bool:
        if self.raw == other.raw:
            return True
        if abs(self.length - other.length) > SAME_VOICE_LENGTH * max(self.length, other.length):
            return False
        k = min(len(self.spec), len(other.spec))
        a = self.spec[:k].ravel() - self.spec[:k].mean()
        b = other.spec[:k].ravel() - other.spec[:k].mean()
        corr = float(np.dot(a, b) / (np.sqrt(np.dot(a, a) * np.dot(b, b)) + 1e-12))
        return corr >= SAME_VOICE_CORRELATION


def distinct_variants(lang: str, candidates: Iterable[str] | None = None) -> list[str]:
    """Variants of `lang` that really change the voice.

    Each candidate speaks a probe sentence; one whose audio is (near-)identical to the base voice or
    to an earlier kept variant is dropped (an unknown name falls back to the base voice silently).
    """
    eng = engine()
    names = sorted(candidates) if candidates is not None else [
        v for v in eng.variants() if v not in EFFECT_VARIANTS]
    probe = PROBE_SENTENCE.get(lang, "a b c d e f g")
    kept: list[str] = []
    refs = [_VoiceRef(eng.synth(probe, lang))]
    for name in names:
        try:
            ref = _VoiceRef(eng.synth(probe, f"{lang}+{name}"))
        except ConfigError:
            log.debug("variant %s: unknown to espeak-ng", name)
            continue
        if any(ref.matches(r) for r in refs):
            log.debug("variant %s: sounds like the base voice or another variant, dropped", name)
            continue
        kept.append(name)
        refs.append(ref)
    return kept


def mild_variants(names: Iterable[str]) -> list[str]:
    """The variants among `names` fit to be held-out test voices: ordinary speakers, not effects.

    A held-out voice should be a new speaker of the kind the model was trained on. Extreme settings
    (formant 1-4 moved below 80 % or above 125 % or switched off, the Klatt synthesizer, strong
    echo, the robot families) stay in train, where they widen the training distribution. Judged
    from the variant files (`formant N freq strength width`, `klatt`, `echo delay amplitude`).
    """
    data = Path(engine_data_path()) / "voices" / "!v"
    mild = []
    for name in names:
        if name.startswith(ROBOT_FAMILIES) or not (data / name).is_file():
            continue
        ok = True
        for line in (data / name).read_text(encoding="utf-8", errors="replace").splitlines():
            f = line.split("//")[0].split()
            try:
                if len(f) >= 3 and f[0] == "formant" and f[1] in ("1", "2", "3", "4"):
                    strength = int(f[3]) if len(f) > 3 else 100
                    ok = ok and 80 <= int(f[2]) <= 125 and strength > 0
                elif f[:1] == ["klatt"] or (len(f) >= 3 and f[0] == "echo" and int(f[2]) > 30):
                    ok = False
            except ValueError:
                ok = False
        if ok:
            mild.append(name)
    return mild


def engine_data_path() -> str:
    """espeak-ng data directory of the `espeakng-loader` wheel (no library initialization)."""
    try:
        import espeakng_loader
    except ImportError:
        raise MissingInputError("the sample corpus needs the PyPI package espeakng-loader "
                                "(pip install espeakng-loader); it bundles libespeak-ng") from None
    return str(espeakng_loader.get_data_path())


# --- the plan --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Voice:
    variant: str
    rate: int
    pitch: int
    pitch_range: int

    @property
    def speaker_key(self) -> str:
        """Variant plus speed and pitch buckets: what makes one "speaker"."""
        rate_b = min(2, 3 * (self.rate - RATE_WPM[0]) // (RATE_WPM[1] - RATE_WPM[0] + 1))
        pitch_b = min(2, 3 * (self.pitch - PITCH[0]) // (PITCH[1] - PITCH[0] + 1))
        return f"{self.variant}|r{rate_b}|p{pitch_b}"

    @property
    def client_id(self) -> str:
        return hashlib.sha256(self.speaker_key.encode()).hexdigest()

    @property
    def gender(self) -> str:
        # Only the numbered variants declare a gender; current CV spells it like this.
        if self.variant[:1] == "m" and self.variant[1:].isdigit():
            return "male_masculine"
        if self.variant[:1] == "f" and self.variant[1:].isdigit():
            return "female_feminine"
        return ""


@dataclass(frozen=True)
class Clip:
    index: int
    lang: str
    split: str
    sentence: str
    voice: Voice
    seed: int

    @property
    def filename(self) -> str:
        return plan_name(self.lang, self.index)


def plan_name(lang: str, index: int) -> str:
    """The clip's file name, Common Voice style."""
    return f"common_voice_{lang}_{index:06d}.mp3"


def load_sentences(lang: str) -> list[str]:
    """The language pack's `sentences.txt` (one sentence a line, duplicates dropped, order kept)."""
    path = load_pack(lang).sentences_path
    if not path.is_file():
        raise MissingInputError(f"{path}: the {lang} language pack has no sentences.txt; the sample "
                                f"corpus needs one sentence per line (see scripts/make_sentences.py)")
    seen: dict[str, None] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = " ".join(line.split())
        if line and not line.startswith("#"):
            seen.setdefault(line, None)
    if len(seen) < 10:
        raise MissingInputError(f"{path}: only {len(seen)} sentences; the sample corpus needs at least 10")
    return list(seen)


def _split_counts(clips: int) -> dict[str, int]:
    if clips < 3:
        return {"train": clips, "dev": 0, "test": 0}
    dev = max(1, round(clips * DEV_FRACTION))
    test = max(1, round(clips * TEST_FRACTION))
    return {"train": clips - dev - test, "dev": dev, "test": test}


def split_pools(lang: str, seed: int, sentences: Sequence[str], variants: Sequence[str],
                heldout_candidates: Sequence[str] | None = None
                ) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(voice variants, sentences) per split. dev and test get their own voices (drawn from
    `heldout_candidates`, default all) and sentences. They depend on the seed alone, not on the
    corpus size, so corpora of different sizes share their held-out voices and sentence pools
    (their CERs compare)."""
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(len(sentences)))
    pool = [v for v in (heldout_candidates or variants) if v in variants]
    n_held = max(1, min(HELDOUT_VOICES_MAX, len(variants) // 10, len(pool) // 2))
    if len(pool) < 2:
        raise PipelineError(f"only {len(pool)} voices of {lang} may be held out; need at least 2")
    held = [pool[i] for i in rng.permutation(len(pool))[:2 * n_held]]
    voice_pools = {"dev": held[:n_held], "test": held[n_held:],
                   "train": [v for v in variants if v not in held]}
    n_sent = {k: max(1, round(len(sentences) * f))
              for k, f in (("dev", DEV_FRACTION), ("test", TEST_FRACTION))}
    sentence_pools = {"dev": [sentences[i] for i in order[:n_sent["dev"]]],
                      "test": [sentences[i] for i in order[n_sent["dev"]:n_sent["dev"] + n_sent["test"]]],
                      "train": [sentences[i] for i in order[n_sent["dev"] + n_sent["test"]:]]}
    return voice_pools, sentence_pools


def plan_corpus(lang: str, clips: int, seed: int, sentences: Sequence[str],
                variants: Sequence[str], heldout_candidates: Sequence[str] | None = None) -> list[Clip]:
    """Decide every clip: split, sentence, voice, noise seed. Pure function of its arguments.

    dev and test get their own voice variants and sentences (`split_pools`), disjoint from train's
    and from each other's.
    """
    if clips < 1:
        raise ConfigError(f"--clips must be at least 1 (got {clips})")
    if len(variants) < 3:
        raise PipelineError(f"only {len(variants)} distinct espeak-ng voices for {lang}; need at least 3")
    rng = np.random.default_rng([seed, clips])
    counts = _split_counts(clips)
    voice_pools, sentence_pools = split_pools(lang, seed, sentences, variants, heldout_candidates)
    planned: list[tuple[str, str, Voice]] = []
    for split in SPLIT_FILES:
        pool = sentence_pools[split]
        for k in range(counts[split]):
            # Walk the shuffled pool; reshuffle when a pass is complete (more clips than sentences).
            if k % len(pool) == 0 and k:
                pool = [pool[i] for i in rng.permutation(len(pool))]
            sentence = pool[k % len(pool)]
            voice = Voice(variant=str(rng.choice(voice_pools[split])),
                          rate=int(rng.integers(RATE_WPM[0], RATE_WPM[1] + 1)),
                          pitch=int(rng.integers(PITCH[0], PITCH[1] + 1)),
                          pitch_range=int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1)))
            planned.append((split, sentence, voice))
    # File numbers in random order, so a name does not reveal the split.
    numbers = rng.permutation(len(planned))
    result = [Clip(index=int(numbers[i]) + 1, lang=lang, split=s, sentence=t, voice=v,
                   seed=int(rng.integers(0, 2**31)))
              for i, (s, t, v) in enumerate(planned)]
    return sorted(result, key=lambda c: c.index)


# --- audio -----------------------------------------------------------------------------------------
def render_clip(clip: Clip) -> tuple[bytes, float]:
    """Synthesize, pad with silence, add light noise, resample to 48 kHz, encode mp3.

    Returns (mp3 bytes, duration in seconds). A top-level function so a process pool can run it.
    """
    import soundfile as sf
    import soxr

    speech = engine().synth(clip.sentence, f"{clip.lang}+{clip.voice.variant}", clip.voice.rate,
                            clip.voice.pitch, clip.voice.pitch_range).astype(np.float32) / 32768.0
    rng = np.random.default_rng(clip.seed)
    lead, tail = (int(rng.uniform(*SILENCE_S) * ESPEAK_RATE) for _ in range(2))
    audio = np.concatenate([np.zeros(lead, np.float32), speech, np.zeros(tail, np.float32)])
    peak = float(np.max(np.abs(speech))) or 1.0
    audio *= rng.uniform(*PEAK) / peak
    rms = float(np.sqrt(np.mean(np.square(audio[lead:lead + len(speech)])))) or 1e-4
    noise_rms = rms / (10 ** (rng.uniform(*SNR_DB) / 20))
    audio = audio + rng.normal(0.0, noise_rms, len(audio)).astype(np.float32)
    audio = soxr.resample(audio, ESPEAK_RATE, SAMPLE_RATE, quality="HQ")
    audio = np.clip(audio, -1.0, 1.0)
    buf = io.BytesIO()
    # VBR at this level gives ~50-60 kb/s mono, close to Common Voice's clip sizes.
    sf.write(buf, audio, SAMPLE_RATE, format="MP3", subtype="MPEG_LAYER_III",
             bitrate_mode="VARIABLE", compression_level=0.8)
    return buf.getvalue(), len(audio) / SAMPLE_RATE


def render_block(block: Sequence[Clip]) -> list[tuple[int, bytes, float]]:
    """Render `block` in order in this (fresh) process: [(clip index, mp3 bytes, seconds)]."""
    eng = engine()
    if block and hasattr(eng._lib, "espeak_ng_SetRandSeed"):
        eng._lib.espeak_ng_SetRandSeed(ctypes.c_long(block[0].seed))
    return [(clip.index, *render_clip(clip)) for clip in block]


# --- archive ---------------------------------------------------------------------------------------
def tsv_text(rows: Sequence[Clip]) -> str:
    """A Common Voice TSV (header `CV_COLUMNS`) for `rows`."""
    lines = ["\t".join(CV_COLUMNS)]
    for c in rows:
        fields = [c.voice.client_id, c.filename, c.sentence, "2", "0", "", c.voice.gender, "", "",
                  c.lang, ""]
        if any(ch in f for f in fields for ch in "\t\n\r"):
            raise PipelineError(f"clip {c.filename}: a TSV field holds a tab or newline ({c.sentence!r})")
        lines.append("\t".join(fields))
    return "\n".join(lines) + "\n"


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes | None) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = TAR_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if data is None:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tar.addfile(info)
    else:
        info.mode = 0o644
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def _pool_workers(blocks: int) -> int:
    return max(1, min(2, os.cpu_count() or 1, blocks))


def make_sample_corpus(lang: str, out: Path, clips: int = 1000, seed: int = 1) -> Path:
    """Write a Common-Voice-format archive of `clips` synthetic clips in `lang` to `out` (atomically).

    Raises:
        ConfigError: unknown language or clips < 1.
        MissingInputError: the language pack has no sentences.txt, or espeakng-loader is missing.
    """
    out = Path(out)
    pack = load_pack(lang)
    if clips < 1:
        raise ConfigError(f"--clips must be at least 1 (got {clips})")
    sentences = load_sentences(pack.code)
    workers = _pool_workers(-(-clips // BLOCK_CLIPS))
    # spawn + one task per child: every task (the voice probe, each block of clips) starts from a
    # freshly loaded libespeak-ng (see BLOCK_CLIPS), so nothing depends on this process's history.
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, maxtasksperchild=1) as pool:
        # Ordinary voices only: the extreme variants (formants moved or switched off, Klatt, echo,
        # robots) made the held-out CER of a demo-sized model stall (37 % greedy after 8 minutes).
        variants = mild_variants(pool.apply(distinct_variants, (pack.code,)))
        plan = plan_corpus(pack.code, clips, seed, sentences, variants)
        by_split = {s: [c for c in plan if c.split == s] for s in SPLIT_FILES}
        log.info("sample corpus %s: %d clips (train %d, dev %d, test %d), %d sentences, %d distinct voices",
                 lang, clips, *(len(by_split[s]) for s in SPLIT_FILES), len(sentences), len(variants))
        for split in ("dev", "test"):
            log.info("%s voices (held out of train): %s", split,
                     ", ".join(sorted({c.voice.variant for c in by_split[split]})) or "none")
        root = f"{VERSION_DIR}/{pack.code}"
        start = time.monotonic()
        total_s = 0.0
        with atomic_write(out, "wb") as fh, \
                gzip.GzipFile(filename="", fileobj=fh, mode="wb", mtime=0, compresslevel=6) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar, \
                Progress(clips, f"synthesizing {lang} clips", unit="clips") as prog:
            os.fchmod(fh.fileno(), 0o644)  # the temp file is 0600; the archive is shared data
            for d in (VERSION_DIR, root, f"{root}/clips"):
                _tar_add(tar, d, None)
            _tar_add(tar, f"{root}/validated.tsv", tsv_text(plan).encode())
            for split in SPLIT_FILES:
                _tar_add(tar, f"{root}/{split}.tsv", tsv_text(by_split[split]).encode())
            for name in ("invalidated", "other"):
                _tar_add(tar, f"{root}/{name}.tsv", tsv_text([]).encode())
            blocks = [plan[i:i + BLOCK_CLIPS] for i in range(0, len(plan), BLOCK_CLIPS)]
            # imap keeps plan order, so the archive does not depend on worker timing.
            for rendered in pool.imap(render_block, blocks, chunksize=1):
                for index, data, dur in rendered:
                    _tar_add(tar, f"{root}/clips/{plan_name(pack.code, index)}", data)
                    total_s += dur
                prog.update(len(rendered))
    elapsed = max(time.monotonic() - start, 1e-6)
    size = out.stat().st_size
    log.info("sample corpus: %d clips, %.2f h of audio in %.1f s (%.1f clips/s, %d workers), %s: %.1f MB",
             clips, total_s / 3600, elapsed, clips / elapsed, workers, out, size / 1e6)
    return out
