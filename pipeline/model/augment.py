"""Train-set augmentation, configured by `AUGMENT` (train set only; dev/test never augmented).

Syntax: a comma list of `name`, `name=value`, `name=low:high`, each optionally followed by `@p` (the
probability it fires for a sample, default 1). Examples:

    AUGMENT=specaugment
    AUGMENT=volume=-6:6,noise=10:30@0.5,tempo=0.9:1.1,time_mask=2,freq_mask=2

| name | domain | value (default) | effect |
|---|---|---|---|
| `volume` | audio | gain in dB, range (-6:6) | random gain (with FEATURE_CACHE=1: the same c0 shift) |
| `noise` | audio | SNR in dB, range (15:40) | additive white noise at a random SNR |
| `speed` | audio | factor range (0.9:1.1) | resample: tempo and pitch change together |
| `pitch` | audio+features | factor range (0.9:1.1) | resample, then stretch the features back: pitch only |
| `vtlp` | features | warp factor range (0.9:1.1) | vocal tract length perturbation (see `vtlp_matrix`) |
| `tempo` | features | factor range (0.85:1.15) | stretch MFCC frames in time (never below CTC's need) |
| `time_mask` | features | number of masks (2) | SpecAugment: zero up to 10 consecutive frames per mask |
| `freq_mask` | features | number of masks (2) | SpecAugment: zero up to 4 adjacent MFCC coefficients |
| `specaugment` | features | — | `time_mask=2,freq_mask=2` |

Randomness is stateless, derived from RANDOM_SEED, the epoch and the sample index: an epoch
replayed after a resume sees the same augmentations. With FEATURE_CACHE=1 the audio-domain
augmentations cannot apply (features are computed once) and are reported as ignored, except
`volume`, which then shifts c0 exactly as the gain would (up to the log floor).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Any

from pipeline.errors import ConfigError
from pipeline.model.geometry import N_INPUT, SAMPLE_RATE

log = logging.getLogger(__name__)

_DEFAULTS: dict[str, tuple[float, float]] = {
    "volume": (-6.0, 6.0), "noise": (15.0, 40.0), "speed": (0.9, 1.1), "pitch": (0.9, 1.1),
    "tempo": (0.85, 1.15), "time_mask": (2, 2), "freq_mask": (2, 2), "vtlp": (0.9, 1.1),
}
AUDIO = ("volume", "noise", "speed", "pitch")
TIME_MASK_FRAMES = 10
FREQ_MASK_COEFFS = 4


@dataclass(frozen=True)
class AugSpec:
    name: str
    low: float
    high: float
    p: float = 1.0


def parse_augment(text: str) -> list[AugSpec]:
    """Parse AUGMENT; raise ConfigError naming the bad item."""
    specs: list[AugSpec] = []
    for raw in (t.strip() for t in text.split(",")):
        if not raw:
            continue
        item, _, prob = raw.partition("@")
        name, _, value = item.partition("=")
        name = name.strip()
        try:
            p = float(prob) if prob else 1.0
            if name == "specaugment":
                if value:
                    raise ValueError
                specs += [AugSpec("time_mask", 2, 2, p), AugSpec("freq_mask", 2, 2, p)]
                continue
            if name not in _DEFAULTS:
                raise KeyError(name)
            lo, hi = _DEFAULTS[name]
            if value:
                a, sep, b = value.partition(":")
                lo = float(a)
                hi = float(b) if sep else lo
            if not 0.0 <= p <= 1.0 or hi < lo:
                raise ValueError
            if name in ("speed", "pitch", "tempo", "vtlp") and lo <= 0:
                raise ValueError
        except KeyError:
            raise ConfigError(f"AUGMENT: unknown augmentation {name!r} in {raw!r}; known: "
                              f"{', '.join([*_DEFAULTS, 'specaugment'])}") from None
        except ValueError:
            raise ConfigError(f"AUGMENT: bad item {raw!r}; expected name, name=value or name=low:high "
                              f"(low <= high, factors > 0), optionally @p with 0 <= p <= 1") from None
        specs.append(AugSpec(name, lo, hi, p))
    return specs


@dataclass(frozen=True)
class Augmenter:
    specs: tuple[AugSpec, ...]
    seed: int
    epoch: int = 0
    use_audio: bool = True
    sample_rate: int = SAMPLE_RATE

    def for_epoch(self, epoch: int) -> Augmenter:
        return replace(self, epoch=epoch)

    def without_audio(self) -> Augmenter:
        ignored = [s.name for s in self.specs if s.name in AUDIO and s.name != "volume"]
        if ignored:
            log.warning("AUGMENT: %s ignored with FEATURE_CACHE=1 (features are computed once)",
                        ", ".join(ignored))
        return replace(self, use_audio=False)

    # stateless randomness: (seed, epoch) x (sample, augmentation slot, draw)
    def _seed(self, i: Any, slot: int) -> Any:
        import tensorflow as tf

        return tf.stack([tf.cast(self.seed * 100003 + self.epoch, tf.int64),
                         tf.cast(i, tf.int64) * 64 + slot])

    def _uniform(self, i: Any, slot: int, lo: float, hi: float) -> Any:
        import tensorflow as tf

        return tf.random.stateless_uniform([], self._seed(i, slot), lo, hi)

    def _fires(self, i: Any, slot: int, p: float) -> Any:
        import tensorflow as tf

        if p >= 1.0:
            return tf.constant(True)
        return tf.random.stateless_uniform([], self._seed(i, slot + 32)) < p

    def _slot(self, spec: AugSpec) -> int:
        return self.specs.index(spec)

    def audio(self, audio: Any, i: Any) -> Any:
        """float32 samples [N] -> augmented samples."""
        import tensorflow as tf

        if not self.use_audio:
            return audio
        for spec in self.specs:
            if spec.name not in AUDIO:
                continue
            k = self._slot(spec)
            fires = self._fires(i, k, spec.p)
            if spec.name == "volume":
                gain = tf.pow(10.0, self._uniform(i, k, spec.low, spec.high) / 20.0)
                new = tf.clip_by_value(audio * gain, -1.0, 1.0)
            elif spec.name == "noise":
                snr = self._uniform(i, k, spec.low, spec.high)
                power = tf.reduce_mean(tf.square(audio)) + 1e-10
                std = tf.sqrt(power / tf.pow(10.0, snr / 10.0))
                new = audio + std * tf.random.stateless_normal(tf.shape(audio), self._seed(i, k + 16))
            else:  # speed, pitch: resample by the factor
                factor = self._uniform(i, k, spec.low, spec.high)
                n = tf.shape(audio)[0]
                new_n = tf.maximum(1, tf.cast(tf.cast(n, tf.float32) / factor, tf.int32))
                new = tf.image.resize(audio[tf.newaxis, :, tf.newaxis, tf.newaxis], [new_n, 1])[0, :, 0, 0]
            audio = tf.cond(fires, lambda new=new: new, lambda audio=audio: audio)
        return audio

    def features(self, feats: Any, i: Any, min_frames: Any) -> Any:
        """MFCC [T, 26] -> augmented MFCC; never fewer than `min_frames` frames (CTC feasibility)."""
        import tensorflow as tf

        for spec in self.specs:
            k = self._slot(spec)
            fires = self._fires(i, k, spec.p)
            t = tf.shape(feats)[0]
            if spec.name in ("tempo", "pitch"):
                if spec.name == "pitch" and not self.use_audio:
                    continue
                factor = self._uniform(i, k, spec.low, spec.high)
                # pitch: undo the resample's tempo change (same draw as in `audio`)
                scale = factor if spec.name == "pitch" else 1.0 / factor
                new_t = tf.maximum(tf.cast(tf.cast(t, tf.float32) * scale, tf.int32),
                                   tf.cast(min_frames, tf.int32))
                new_t = tf.maximum(new_t, 1)
                new = tf.image.resize(feats[tf.newaxis, :, :, tf.newaxis], [new_t, N_INPUT])[0, :, :, 0]
            elif spec.name == "volume":
                if self.use_audio:
                    continue  # applied to the samples
                gain_db = self._uniform(i, k, spec.low, spec.high)
                new = feature_gain(feats, gain_db, self.sample_rate)
            elif spec.name == "vtlp":
                new = tf.matmul(feats, vtlp_matrix(self._uniform(i, k, spec.low, spec.high),
                                                   self.sample_rate))
            elif spec.name in ("time_mask", "freq_mask"):
                new = feats
                axis_len = t if spec.name == "time_mask" else N_INPUT
                width_max = TIME_MASK_FRAMES if spec.name == "time_mask" else FREQ_MASK_COEFFS
                for m in range(int(round(spec.low))):
                    width = tf.cast(self._uniform(i, k * 8 + m + 256, 0, width_max + 1), tf.int32)
                    start = tf.cast(self._uniform(i, k * 8 + m + 512, 0, 1), tf.float32) * \
                        tf.cast(tf.maximum(axis_len - width, 0), tf.float32)
                    start = tf.cast(start, tf.int32)
                    idx = tf.range(axis_len)
                    keep = tf.logical_or(idx < start, idx >= start + width)
                    if spec.name == "time_mask":
                        new = new * tf.cast(keep, new.dtype)[:, tf.newaxis]
                    else:
                        new = new * tf.cast(keep, new.dtype)[tf.newaxis, :]
            else:
                continue
            feats = tf.cond(fires, lambda new=new: new, lambda feats=feats: feats)
        return feats


def vtlp_matrix(alpha: Any, sample_rate: int = SAMPLE_RATE) -> Any:
    """[26, 26] linear map of MFCC frames that warps their spectrum's frequency axis by `alpha`
    (a scalar tensor): S'(f) = S(f / alpha), formants move up for alpha > 1 (a shorter vocal tract).

    The MFCC is the DCT of the 40-channel log-mel spectrum (reference.mfcc_frames). Its 26
    coefficients give back a smoothed log-mel by the DCT's pseudo-inverse; each mel channel then
    takes the (linearly interpolated) value at its warped centre frequency, and the DCT maps back.
    A feature-domain map, so it works on cached features and costs one small matmul per clip."""
    import numpy as np
    import tensorflow as tf

    from pipeline.model.reference import _dct_matrix, _hz_to_mel

    channels = 40
    dct = _dct_matrix(channels, N_INPUT)                       # [40, 26]: logmel @ dct = mfcc
    mel_low, mel_high = float(_hz_to_mel(20.0)), float(_hz_to_mel(sample_rate / 2))
    spacing = (mel_high - mel_low) / (channels + 1)
    centers_mel = mel_low + spacing * np.arange(1, channels + 1)
    centers_hz = 700.0 * np.expm1(centers_mel / 1127.0)
    # source position of each output channel, in fractional channel index
    src_hz = tf.constant(centers_hz, tf.float32) / tf.cast(alpha, tf.float32)
    src_mel = 1127.0 * tf.math.log1p(src_hz / 700.0)
    pos = tf.clip_by_value((src_mel - mel_low) / spacing - 1.0, 0.0, channels - 1.0)
    lo = tf.minimum(tf.floor(pos), channels - 2.0)
    frac = pos - lo
    lo_i = tf.cast(lo, tf.int32)
    warp = (tf.one_hot(lo_i, channels) * (1.0 - frac)[:, None]
            + tf.one_hot(lo_i + 1, channels) * frac[:, None])          # [40 out, 40 src]
    pinv = tf.constant(np.linalg.pinv(dct), tf.float32)              # [26, 40]
    return tf.matmul(tf.matmul(pinv, warp, transpose_b=True), tf.constant(dct, tf.float32))


def quantization_floor(sample_rate: int = SAMPLE_RATE) -> Any:
    """[40] log-mel level of 16-bit quantization noise (the floor of any int16 recording, and all
    there is above 4 kHz in 8 kHz audio converted to 16 kHz): uniform noise of step 1/32768 through
    the Hann window, the magnitude spectrum (Rayleigh mean) and each mel channel's weights."""
    import numpy as np

    from pipeline.model.geometry import window_samples
    from pipeline.model.reference import _mel_matrix

    window = window_samples(sample_rate)
    n_fft = 1 << (window - 1).bit_length()
    sigma = 1.0 / 32768 / math.sqrt(12.0)
    magnitude = math.sqrt(math.pi / 4 * sigma ** 2 * window * 3 / 8)
    weights = _mel_matrix(n_fft // 2 + 1, sample_rate).sum(axis=0)
    return np.log(np.maximum(weights * magnitude, 1e-12)).astype(np.float32)


def feature_gain(feats: Any, gain_db: Any, sample_rate: int = SAMPLE_RATE) -> Any:
    """MFCC [T, 26] of a clip -> the MFCC it would have been recorded `gain_db` louder (a scalar
    tensor), quantization floor included: in the (smoothed) log-mel spectrum each channel's
    energy above the floor is scaled and the floor stays, so a quiet recording's speech band sinks
    towards the floor like a quiet speaker's does. A gain above 1 (and anything far above the
    floor) is a c0 shift."""
    import numpy as np
    import tensorflow as tf

    from pipeline.model.reference import _dct_matrix

    dct = _dct_matrix(40, N_INPUT)
    logmel = tf.matmul(feats, tf.constant(np.linalg.pinv(dct), feats.dtype))     # [T, 40]
    above = tf.maximum(logmel - tf.constant(quantization_floor(sample_rate), feats.dtype), 1e-4)
    gain = tf.cast(tf.pow(10.0, gain_db / 20.0), feats.dtype)
    # louder: the recording's own floor is amplified with it (a plain shift); quieter: the speech
    # sinks towards the floor that the new recording's quantization keeps
    delta = tf.where(gain >= 1.0, tf.math.log(gain) + 0.0 * above,
                     tf.math.log1p(tf.math.expm1(above) * gain) - above)
    return feats + tf.matmul(delta, tf.constant(dct, feats.dtype))


def build_augmenter(spec: str, seed: int, sample_rate: int = SAMPLE_RATE) -> Augmenter | None:
    """The augmenter for AUGMENT, or None when it is empty."""
    specs = parse_augment(spec or "")
    if not specs:
        return None
    log.info("augmentation: %s", ", ".join(f"{s.name}[{s.low:g}:{s.high:g}]@{s.p:g}" for s in specs))
    return Augmenter(tuple(specs), seed, sample_rate=sample_rate)
