"""Errors that the CLI turns into a clear message and an exit code."""

from __future__ import annotations

from collections.abc import Iterable


class BenchError(Exception):
    """A user-facing error: the CLI prints the message and exits with `exit_code`."""

    exit_code = 1


class UsageError(BenchError):
    """Bad command-line input (unknown name, bad option): exit code 2, like argparse."""

    exit_code = 2


class UnknownNameError(UsageError):
    def __init__(self, kind: str, name: str, known: Iterable[str], hint: str = ""):
        known = sorted(known)
        msg = f"unknown {kind} {name!r}; known {kind}s: {', '.join(known) if known else '(none)'}"
        super().__init__(msg + (f"\n{hint}" if hint else ""))
        self.kind, self.name, self.known = kind, name, known


class DataFormatError(BenchError):
    """A malformed data file; the message names the file and, where it can, the line."""

    def __init__(self, path, message: str, line: int | None = None):
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")
        self.path, self.line = path, line


class MissingDataError(BenchError):
    """A model needs something the dataset does not have (attributes, images, reviews)."""
