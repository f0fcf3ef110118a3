"""How a batch command turns one case's exception into its one error line (the batch carries on)."""

from __future__ import annotations

from medai.errors import MedAIError
from medai.progress import Progress


def case_error_line(error: Exception, item: object, debug: bool) -> str:
    """The one line reporting ``error`` for case ``item``; with ``--debug`` the error is raised instead."""
    if debug:
        raise error
    if isinstance(error, MedAIError):
        return error.one_line()
    return f"{item}: unexpected error ({type(error).__name__}: {error}); rerun with --debug"


def report_case_failure(progress: Progress, message: str, single_line: bool) -> None:
    """A failed case: listed in the batch's progress, or, for a lone case, the command's one error line."""
    if single_line:
        if progress.stream.isatty():
            progress.stream.write("\r\x1b[K")  # clear the bar
        raise MedAIError(message)  # printed by medai.cli.main as the one error line
    progress.case_failed(message)
