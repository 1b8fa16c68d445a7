"""The VoxForge importer on sessions in the real release layout (issue #16).

The fixture copies the layout of real sessions (`<user>-<date>-<id>/etc/PROMPTS`, `etc/README`,
`wav/<id>.wav`, one archive per session) with speech synthesized here: VoxForge audio is GPL-3.0,
so none is bundled. The prompts imitate VoxForge's quirk of upper-casing all but accented letters.
"""

from __future__ import annotations

import soundfile as sf

from tests.importers.archives import encode, make_tgz, speech
from tests.importers.helpers import quarantine, read_csv, report, run_stages

README = """User Name:{user}

Speaker Characteristics:

Gender: {gender}
Age Range: Adulte
Language: FR
Pronunciation dialect: Français Belgique

File Info:

File type: wav
Sampling Rate: 48000
Sample rate format: 16
Number of channels: 1
"""
SESSIONS = [  # (session, user, voice, format, [(clip id, prompt)])
    ("Agoniste-20130928-bfg", "Agoniste", "fr+m3", "wav", [
        ("fr-sb-495", "IL éTAIT à SOIXANTE MILLIONS DE KILOMèTRES"),
        ("fr-sb-496", "LE MONDE éTAIT DANS UNE SéCURITé PARFAITE"),
        ("fr-sb-497", "IL VéRIFIA SA PERFUSION")]),
    ("Agoniste-20131002-xyz", "Agoniste", "fr+m3", "wav", [
        ("fr-sb-510", "LA NUIT TOMBAIT SUR LA VILLE"),
        ("fr-sb-511", "PERSONNE NE RéPONDIT")]),
    ("Marie-20140101-abc", "Marie", "fr+f2", "flac", [
        ("fr-sb-600", "LES ENFANTS JOUENT DANS LE JARDIN"),
        ("fr-sb-601", "ELLE OUVRIT LA FENêTRE"),
        ("fr-sb-602", "CE CLIP MANQUE DANS L'ARCHIVE")]),       # listed, no audio
    ("anonymous-20150505-qqq", "anonymous", "fr+m5", "wav", [
        ("a01", "LE TRAIN ARRIVE à L'HEURE"),
        ("a02", "NOUS PARTONS DEMAIN MATIN")]),
    ("anonymous-20150606-rrr", "anonymous", "fr+f4", "wav", [
        ("b01", "MON FRèRE HABITE à PARIS"),
        ("b02", "IL NEIGE EN MONTAGNE")]),
]


def make_sessions(folder):
    for session, user, voice, fmt, clips in SESSIONS:
        files = {f"{session}/etc/README": README.format(user=user, gender="Masculin").encode(),
                 f"{session}/etc/PROMPTS": "".join(f"{session}/mfc/{cid} {text}\n"
                                                   for cid, text in clips).encode()}
        for cid, text in clips:
            if "MANQUE" in text:
                continue
            x = speech(text.lower(), voice, 16000)
            files[f"{session}/{fmt}/{cid}.{fmt}"] = encode(x, 16000, fmt.upper())
        make_tgz(folder / f"{session}.tgz", files)


def test_voxforge_sessions_import(data_dir):
    make_sessions(data_dir / "sources" / "voxforge")
    _, paths = run_stages(data_dir, CORPORA="voxforge", MIN_DURATION="0.3")
    rep = report(paths, "voxforge")
    q = quarantine(paths, "voxforge")
    assert q == {"Marie-20140101-abc/fr-sb-602": "missing_file"}
    assert rep["rows_kept"] == 11
    # speakers: the README's user name; each anonymous session its own
    assert rep["speakers_kept"] == 4
    rows = {sp: read_csv(paths.corpus_csv("voxforge", sp))[1] for sp in ("train", "dev", "test")}
    assert all(rows["train"]) and sum(len(r) for r in rows.values()) == 11
    texts = {r["transcript"] for rs in rows.values() for r in rs}
    assert "il était à soixante millions de kilomètres" in texts
    assert "elle ouvrit la fenêtre" in texts  # from a flac session
    wav = paths.corpus_dir("voxforge") / rows["train"][0]["wav_filename"]
    assert sf.info(str(wav)).samplerate == 16000
    sessions_of = {r["wav_filename"].split("/")[1] for rs in rows.values() for r in rs}
    assert len(sessions_of) == 5


def test_voxforge_missing_sessions_name_the_folder(data_dir):
    import pytest

    from pipeline.errors import MissingInputError

    with pytest.raises(MissingInputError, match="sources/voxforge"):
        run_stages(data_dir, CORPORA="voxforge")
