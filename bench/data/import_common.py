"""What the importers share: the importer version and safe readers of their input files.

Pickles are read with `restricted_load`, which admits plain containers and scalars only:
a pickle naming any other class (``os.system``, numpy objects, ...) is refused before
anything is called. Text and JSON readers name the file (and line) of a decoding error.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

from bench.errors import DataFormatError

__all__ = ["IMPORTER_VERSION", "RestrictedUnpickler", "read_json", "restricted_load", "text_lines"]

# Version of what the importers write from the same input: bump it whenever a change alters the
# imported files, so that datasets imported by an older version are refused with the re-import command.
IMPORTER_VERSION = 1


# ----------------------------------------------------------------------------------------- pickles


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain data only: builtin containers and scalars (which need no class lookup)
    plus the few classes below. Everything else is refused *before* it can be called."""

    ALLOWED = frozenset(
        {
            ("collections", "OrderedDict"),
            ("collections", "defaultdict"),
            # defaultdict default factories and the rare protocol-0/1 encodings of plain containers
            ("builtins", "set"),
            ("builtins", "frozenset"),
            ("builtins", "complex"),
            ("builtins", "list"),
            ("builtins", "dict"),
            ("builtins", "tuple"),
            ("builtins", "int"),
            ("builtins", "float"),
            ("builtins", "str"),
            ("builtins", "bytes"),
            ("builtins", "bytearray"),
            ("builtins", "bool"),
        }
    )

    def __init__(self, file, path: Path):
        super().__init__(file)
        self._path = path

    def find_class(self, module: str, name: str):
        # protocols 0-2 spell builtins the Python 2 way; super() maps the name back
        if ("builtins" if module == "__builtin__" else module, name) in self.ALLOWED:
            return super().find_class(module, name)
        if (module, name) == ("_codecs", "encode"):
            return _latin1_bytes  # how protocols 0-2 store bytes: _codecs.encode(text, "latin1")
        raise DataFormatError(
            self._path,
            f"refusing to unpickle {module}.{name}: only plain containers and scalars are allowed "
            "(a data pickle that names a class or function may run arbitrary code)",
        )

    def persistent_load(self, pid):
        raise DataFormatError(self._path, "refusing to unpickle a persistent id: only plain data is allowed")


def _latin1_bytes(text: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    """Stand-in for ``_codecs.encode`` in old-protocol pickles of bytes: latin-1 text to bytes only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise pickle.UnpicklingError(
            f"refusing _codecs.encode({type(text).__name__}, {encoding!r}, {errors!r})"
        )
    return text.encode("latin-1")


def restricted_load(path: Path):
    """Load a pickle of plain data (dict/list/str/int/float/...); refuse anything else."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f, path).load()
    except DataFormatError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, ImportError, MemoryError, RecursionError, UnicodeDecodeError) as e:
        raise DataFormatError(path, f"not a readable pickle ({type(e).__name__}: {e})") from None


# ----------------------------------------------------------------------------------------- text


def text_lines(path: Path):
    """Yield (lineno, line) of a UTF-8 text file; a decoding error names the line."""
    lineno = 0
    with open(path, "rb") as f:
        for raw in f:
            lineno += 1
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DataFormatError(path, "not UTF-8 text (save the file as UTF-8)", lineno) from None


def read_json(path: Path):
    """The JSON value in a UTF-8 file; a syntax error names the line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataFormatError(path, "not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataFormatError(path, f"invalid JSON ({e.msg}, column {e.colno})", e.lineno) from None


def check_user_line(path, lineno: int, user, shown: str, n_items: int, line_of: dict) -> None:
    """What every `user item item ...` line must be: its user's only line, with at least one item
    (`line_of`: user -> the line that named it so far; `shown`: the user as the message writes it)."""
    if user in line_of:
        raise DataFormatError(path, f"user {shown} appears twice (lines {line_of[user]} and {lineno}); "
                              "merge them into one line, items in time order", lineno)
    if n_items < 1:
        raise DataFormatError(path, f"user {shown} has no items (expected 'user item item ...'; "
                              "remove the line or add the user's items)", lineno)
