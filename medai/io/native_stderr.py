"""Holding back what native libraries (ITK) print on stderr, so that a failure is reported as one line."""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def native_stderr_held(lines: list[str]) -> Iterator[None]:
    """Capture what is written to file descriptor 2 while the block runs.

    When the block succeeds the text is passed on to stderr unchanged; when it raises, the text is kept in
    ``lines`` (one entry a non-empty line) for the error message instead. ITK, for example, prints
    "MetaImage: M_ReadElementsData: data not read completely" there and raises a misleading exception.
    If file descriptor 2 cannot be duplicated (no console), nothing is captured.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = held.read().decode(errors="replace")
            if failed:
                lines.extend(line.strip() for line in text.splitlines() if line.strip())
            elif text:
                sys.stderr.write(text)
                sys.stderr.flush()
