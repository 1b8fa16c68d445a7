"""Real recordings in every format we meet import through a clip list (issue #16): WAV at 16 and
44.1 kHz, MP3 at 22.05 kHz, Ogg/Opus, AIFF (tests/data/real, licences in tests/data/PROVENANCE.md).
Each converted clip is 16 kHz mono PCM16 and lasts what the source lasts, within 10 ms."""

from __future__ import annotations

from pathlib import Path

import soundfile as sf

from tests.importers.helpers import read_csv, report, run_stages

REAL = Path(__file__).resolve().parent.parent / "data" / "real"
# file -> (transcript, source duration in s measured without our decoder)
CLIPS = {
    # soxi -D (sox 14.4.2)
    "picovoice_fr_16k.wav": ("Les deux autres sont situés au bord de la mer jaune.", 5.040000),
    "readalongs_ej-fra-5_44k.wav": ("En parallèle, j'aide à écrire des tests pour rendre le "
                                    "ReadAlong-Studio plus robuste.", 4.889138),
    "french_44k.aiff": ("et c'est la dictée numéro un", 2.532766),
    # last Ogg granule position minus the OpusHead pre-skip, / 48 kHz (tests/data/PROVENANCE.md)
    "fleurs_fr_000.opus.ogg": ("l'accident a eu lieu en terrain montagneux et il semblerait que cela "
                               "ait été causé par un incendie malveillant", 10.2),
    # Xing header: 191 frames x 576 samples - LAME delay 576 - padding 671, / 22050 Hz
    "udhr_preamble_first5s_22k.mp3": ("Déclaration universelle des droits de l'homme. Préambule.",
                                      (191 * 576 - 576 - 671) / 22050),
    # the same 191 VBR frames without a Xing header (as cut or streamed files come): soxi -D
    "udhr_preamble_first5s_22k_noxing.mp3": ("Déclaration universelle des droits de l'homme. "
                                             "Préambule.", 4.962993),
}


def test_vbr_mp3_without_xing_header_decodes_whole():
    """libsndfile estimates such a file's length from its first frame's bit rate and stops reading
    there (3.55 s of these 4.96 s); `audio.decode` gives it the real frame count."""
    from pipeline import audio

    with sf.SoundFile(str(REAL / "udhr_preamble_first5s_22k_noxing.mp3")) as f:
        assert f.frames / f.samplerate < 4.0  # the estimate is short: the test is meaningful
    samples, rate, _ = audio.decode(REAL / "udhr_preamble_first5s_22k_noxing.mp3")
    assert abs(samples.size / rate - 4.962993) <= 0.010


def test_every_real_format_imports_with_its_duration(data_dir):
    lines = ["path\ttranscript"]
    lines += [f"{REAL / name}\t{text}" for name, (text, _) in CLIPS.items()]
    (data_dir / "sources" / "real.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, paths = run_stages(data_dir, CORPORA="csv", CSV_LIST="real.tsv", MODEL_LANGUAGE="fr")
    rep = report(paths, "csv")
    assert rep["rows_kept"] == len(CLIPS) and not rep["reasons"], rep["reasons"]
    rows = [r for sp in ("train", "dev", "test") for r in read_csv(paths.corpus_csv("csv", sp))[1]]
    assert len(rows) == len(CLIPS)
    seen = set()
    for r in rows:
        wav = paths.corpus_dir("csv") / r["wav_filename"]
        name = next(n for n in CLIPS if wav.stem.endswith(Path(n).stem))
        seen.add(name)
        info = sf.info(str(wav))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16"), name
        assert abs(info.frames / 16000 - CLIPS[name][1]) <= 0.010, (name, info.frames / 16000)
    assert seen == set(CLIPS)
