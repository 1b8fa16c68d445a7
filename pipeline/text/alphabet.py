"""DeepSpeech `alphabet.txt`: parsing, writing, encoding and the serialized form embedded in models.

Rules (DeepSpeech 0.9 `native_client/alphabet.cc`): UTF-8, one label per line, index = order of the
kept lines; lines starting with `#` are comments; a line that is exactly `\\#` is the `#` label; empty
lines are skipped; a line holding one space is the space label. Transcripts are split into codepoints.
The CTC blank is not in the file: it is the last output (index = len(alphabet)).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.fsutil import write_text


@dataclass(frozen=True)
class Alphabet:
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for lab in self.labels:
            if len(lab) != 1:
                raise ConfigError(f"alphabet label {lab!r} is not a single codepoint")
            if lab in seen:
                raise ConfigError(f"alphabet label {lab!r} appears twice")
            seen.add(lab)

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def from_text(cls, text: str, source: str = "<alphabet>") -> Alphabet:
        if BYTES_MARKER in text.splitlines():
            return ByteAlphabet()
        labels: list[str] = []
        for lineno, raw in enumerate(text.splitlines(), 1):
            if raw == "\\#":
                labels.append("#")
                continue
            if raw.startswith("#") or raw == "":
                continue
            if len(raw) != 1:
                raise ConfigError(f"{source}:{lineno}: alphabet line {raw!r} must hold exactly one "
                                  f"character (use '\\#' for '#')")
            labels.append(raw)
        if not labels:
            raise ConfigError(f"{source}: the alphabet has no labels")
        return cls(tuple(labels))

    @classmethod
    def from_file(cls, path: str | Path) -> Alphabet:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: alphabet is not UTF-8 ({exc})") from None
        return cls.from_text(text, str(path))

    # --- properties ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.labels)

    @property
    def blank_index(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        """Model outputs: labels + CTC blank."""
        return len(self.labels) + 1

    @property
    def space_index(self) -> int:
        return self.labels.index(" ") if " " in self.labels else -1

    def __contains__(self, ch: object) -> bool:
        return ch in self._index

    @property
    def _index(self) -> dict[str, int]:
        cache = self.__dict__.get("_idx")
        if cache is None:
            cache = {lab: i for i, lab in enumerate(self.labels)}
            object.__setattr__(self, "_idx", cache)
        return cache

    # --- encoding -----------------------------------------------------------------------------
    def missing(self, text: str) -> list[str]:
        """Characters of `text` that the alphabet cannot encode, in order of first appearance."""
        out: list[str] = []
        for ch in text:
            if ch not in self._index and ch not in out:
                out.append(ch)
        return out

    def encode(self, text: str) -> list[int]:
        try:
            return [self._index[ch] for ch in text]
        except KeyError as exc:
            raise ValueError(f"character {exc.args[0]!r} of {text!r} is not in the alphabet") from None

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.labels[i] for i in ids if 0 <= i < len(self.labels))

    # --- serialization ------------------------------------------------------------------------
    def to_text(self, header: Sequence[str] = ()) -> str:
        lines = [f"# {h}" for h in header]
        for lab in self.labels:
            lines.append("\\#" if lab == "#" else lab)
        return "\n".join(lines) + "\n"

    def write(self, path: str | Path, header: Sequence[str] = ()) -> None:
        write_text(path, self.to_text(header))

    def serialize(self) -> bytes:
        """The `metadata_alphabet` bytes: u16 count, then (u16 label id, u16 byte length, UTF-8)."""
        out = [struct.pack("<H", len(self.labels))]
        for i, lab in enumerate(self.labels):
            raw = lab.encode("utf-8")
            out.append(struct.pack("<HH", i, len(raw)) + raw)
        return b"".join(out)

    @classmethod
    def deserialize(cls, data: bytes) -> Alphabet:
        (count,) = struct.unpack_from("<H", data, 0)
        if data == ByteAlphabet().serialize():
            return ByteAlphabet()
        pos = 2
        pairs: dict[int, str] = {}
        for _ in range(count):
            idx, n = struct.unpack_from("<HH", data, pos)
            pos += 4
            pairs[idx] = data[pos:pos + n].decode("utf-8")
            pos += n
        return cls(tuple(pairs[i] for i in range(count)))


# Marker line of a bytes-mode alphabet.txt (DeepSpeech ignores the alphabet file in that mode; ours
# records the mode so every stage reading models/alphabet.txt sees it).
BYTES_MARKER = "# ds-pipeline: bytes output mode (BYTES_OUTPUT_MODE=1)"


@dataclass(frozen=True)
class ByteAlphabet(Alphabet):
    """DeepSpeech's bytes output mode (`UTF8Alphabet`): 255 labels, label i = UTF-8 byte i + 1 (NUL is
    never in a transcript), CTC blank 255, so 256 outputs; the space label is 31 (byte 0x20).

    `labels` holds each byte as the Latin-1 character of the same value, so the label bookkeeping of
    `Alphabet` (size, blank, space index) is unchanged; text goes through UTF-8 instead."""

    labels: tuple[str, ...] = tuple(chr(b) for b in range(1, 256))

    def __post_init__(self) -> None:
        if self.labels != tuple(chr(b) for b in range(1, 256)):
            raise ConfigError("a bytes-mode alphabet has exactly the 255 byte labels 1..255")

    @classmethod
    def create(cls) -> ByteAlphabet:
        return cls()

    def missing(self, text: str) -> list[str]:
        return ["\x00"] if "\x00" in text else []

    def encode(self, text: str) -> list[int]:
        raw = text.encode("utf-8")
        if b"\x00" in raw:
            raise ValueError(f"{text!r} holds a NUL byte, which bytes output mode cannot encode")
        return [b - 1 for b in raw]

    def decode(self, ids: Iterable[int]) -> str:
        """Labels -> UTF-8 text; an invalid byte sequence becomes U+FFFD (as DeepSpeech's decode)."""
        raw = bytes(i + 1 for i in ids if 0 <= i < 255)
        return raw.decode("utf-8", errors="replace")

    def to_text(self, header: Sequence[str] = ()) -> str:
        lines = [BYTES_MARKER, *(f"# {h}" for h in header)]
        return "\n".join(lines) + "\n"

    def serialize(self) -> bytes:
        """DeepSpeech's `UTF8Alphabet.serialize`: 255 pairs (i, 1, byte i + 1): raw bytes, not UTF-8."""
        out = [struct.pack("<H", 255)]
        out.extend(struct.pack("<HH", i, 1) + bytes([i + 1]) for i in range(255))
        return b"".join(out)


def is_bytes_mode(alphabet: Alphabet) -> bool:
    return isinstance(alphabet, ByteAlphabet)
