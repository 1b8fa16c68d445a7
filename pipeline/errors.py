"""Typed exceptions. Each message says what failed, where, and what to change.

Exit codes (HOUSE_STYLE): 2 config/usage, 3 missing input, 1 anything else.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class; `exit_code` is what the CLI returns."""

    exit_code = 1


class ConfigError(PipelineError):
    """A configuration value, env file or CLI flag is wrong."""

    exit_code = 2


class UsageError(PipelineError):
    """The command line is wrong (unknown stage, conflicting flags...)."""

    exit_code = 2


class MissingInputError(PipelineError):
    """An input the user must provide (archive, checkpoint, tool) is absent."""

    exit_code = 3


class LockedError(PipelineError):
    """Another run holds the data-dir lock."""

    exit_code = 1


class ChecksumMismatch(PipelineError):
    """A downloaded or provided file does not have the expected checksum."""


class DownloadError(PipelineError):
    """A download failed after retries."""


class UnsafeArchiveError(PipelineError):
    """An archive member would escape the extraction directory."""


class ExternalToolError(PipelineError):
    """An external program exited non-zero; the message carries its stderr tail."""


class DataDirNotWritable(PipelineError):
    """The data dir (or one of its folders) cannot be written by this user."""

    exit_code = 2


class DataQualityError(PipelineError):
    """Too much of the input was rejected to continue."""


class DiskFullError(PipelineError):
    """The file system holding an output ran out of space (ENOSPC) or quota (EDQUOT)."""
