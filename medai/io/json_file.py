"""Reading a user's JSON file (model card, datalist, labels, overrides) with one-line errors naming it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medai.errors import MedAIError, PathLike


def read_json(path: PathLike, what: str) -> Any:
    """The parsed content of ``path``; a missing, unreadable or non-JSON file is a MedAIError calling it ``what``."""
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MedAIError(f"no such {what}", p) from None
    except OSError as error:
        raise MedAIError(f"cannot read the {what} ({error.strerror or error})", p) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MedAIError(f"not a JSON {what} ({error})", p) from None
