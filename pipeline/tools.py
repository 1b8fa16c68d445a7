"""Running external programs: one helper, no shell, stderr tail in the error."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from pipeline.errors import ExternalToolError, MissingInputError

log = logging.getLogger(__name__)

STDERR_TAIL_LINES = 20


def run_tool(argv: Sequence[str | os.PathLike[str]], *, stdin: bytes | None = None,
             cwd: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None,
             capture_stdout: bool = False, timeout: float | None = None
             ) -> subprocess.CompletedProcess[bytes]:
    """Run `argv` and raise ExternalToolError (with the stderr tail) if it exits non-zero or runs
    longer than `timeout` seconds."""
    args = [os.fspath(a) for a in argv]
    log.debug("running: %s", " ".join(args))
    try:
        proc = subprocess.run(args, input=stdin, cwd=cwd, env=env, check=False, timeout=timeout,
                              stdout=subprocess.PIPE if capture_stdout else subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise MissingInputError(f"program not found: {args[0]}") from None
    except subprocess.TimeoutExpired:
        raise ExternalToolError(f"{Path(args[0]).name} did not finish within {timeout:g} s: "
                                f"{' '.join(args)}") from None
    if proc.returncode != 0:
        tail = b"\n".join(proc.stderr.splitlines()[-STDERR_TAIL_LINES:]).decode("utf-8", "replace")
        raise ExternalToolError(
            f"{Path(args[0]).name} exited with code {proc.returncode}: {' '.join(args)}\n{tail}")
    return proc


@contextlib.contextmanager
def pipe_through_tool(argv: Sequence[str | os.PathLike[str]], stdout: IO[bytes]) -> Iterator[IO[bytes]]:
    """Run `argv` with its stdin a pipe (yielded: write the input to it) and its stdout the open
    file `stdout`, streaming: neither side is held in memory. On leaving the block stdin is closed
    and the program waited for; ExternalToolError (with the stderr tail) if it exits non-zero. An
    exception in the block kills the program and propagates."""
    args = [os.fspath(a) for a in argv]
    log.debug("running: %s", " ".join(args))
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: a chatty program cannot block
        try:
            proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=stdout, stderr=err)
        except FileNotFoundError:
            raise MissingInputError(f"program not found: {args[0]}") from None
        assert proc.stdin is not None
        broken = False
        try:
            yield proc.stdin
            proc.stdin.close()
        except BrokenPipeError:
            broken = True  # the program died early: its exit code and stderr say why
            with contextlib.suppress(OSError):
                proc.stdin.close()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        code = proc.wait()
        if code != 0 or broken:
            err.seek(0)
            tail = b"\n".join(err.read().splitlines()[-STDERR_TAIL_LINES:]).decode("utf-8", "replace")
            if "No space left on device" in tail or "Disk quota exceeded" in tail:
                # the callers' atomic writes turn this into the usual DiskFullError
                raise OSError(errno.ENOSPC if "space" in tail else errno.EDQUOT, tail.strip())
            raise ExternalToolError(f"{Path(args[0]).name} exited with code {code}"
                                    f"{' before reading all its input' if broken else ''}: "
                                    f"{' '.join(args)}\n{tail}")


def kenlm_build_cache() -> Path:
    """Where scripts/build_kenlm.sh puts what it builds: `bin/` (KenLM's tools), `lib/` (the native
    beam search; scripts/build_mpg123.sh's decoder too)."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ds-pipeline" / "kenlm"


def native_lib_dirs() -> list[Path]:
    """Where the project's own native libraries are looked for: the build cache, then the Docker
    image's folder."""
    return [kenlm_build_cache() / "lib", Path("/usr/local/lib/ds-pipeline")]


def load_stamped_library(name: str, source: Path, env: str, sha_symbol: str
                         ) -> tuple[ctypes.CDLL | None, str]:
    """(library, "") or (None, why not) for the native library `name` built from `source`: the
    file $`env` names, else the first of native_lib_dirs() holding it; `env`=0 turns it off. Its
    exported `sha_symbol`() must return the SHA-256 of `source` as installed, so a library built
    from another version of it is never used."""
    setting = os.environ.get(env, "")
    if setting == "0":
        return None, f"{env}=0"
    paths = [Path(setting)] if setting else [d / name for d in native_lib_dirs()]
    found = next((p for p in paths if p.is_file()), None)
    if found is None:
        return None, f"{name} not found in {', '.join(str(p.parent) for p in paths)}"
    try:
        lib = ctypes.CDLL(str(found))
        stamp = getattr(lib, sha_symbol)
        stamp.restype = ctypes.c_char_p
        built_from = stamp().decode()
    except (OSError, AttributeError) as e:
        return None, f"{found} does not load: {e}"
    if built_from != hashlib.sha256(source.read_bytes()).hexdigest():
        return None, f"{found} was built from another version of {source.name}"
    return lib, ""


def default_tool_dirs() -> list[Path]:
    """Where KenLM binaries are looked for after KENLM_BIN: the build cache of scripts/build_kenlm.sh."""
    return [kenlm_build_cache() / "bin", Path("/usr/local/bin")]


def find_tool(name: str, extra_dirs: Sequence[str | os.PathLike[str]] = ()) -> Path | None:
    """Find an executable in `extra_dirs`, then PATH, then the default build cache."""
    for d in [*extra_dirs, *[None], *default_tool_dirs()]:
        if d is None:
            found = shutil.which(name)
            if found:
                return Path(found)
            continue
        cand = Path(d) / name
        if cand.is_file() and os.access(cand, os.X_OK):
            return cand
    return None
