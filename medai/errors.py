"""The one error type users see.

Anything the user can fix (a bad file, a wrong option, an image a model cannot take) raises
:class:`MedAIError`. The command line prints it as a single line naming the file and the problem and
exits non-zero; a traceback appears only with ``--debug``.
"""

from __future__ import annotations

import os
from typing import Optional, Union

PathLike = Union[str, "os.PathLike[str]"]


class MedAIError(Exception):
    """A problem with user input, reported as ``<path>: <problem>`` (or just the problem)."""

    def __init__(self, problem: str, path: Optional[PathLike] = None) -> None:
        self.problem = problem
        self.path = None if path is None else os.fspath(path)
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The message as one line: the file first, then what is wrong with it."""
        text = " ".join(str(self.problem).split())
        return f"{self.path}: {text}" if self.path else text
