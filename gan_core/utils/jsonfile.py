"""Reading JSON files written by the workflow, with errors that name the file."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import DataError


def read_json(path: str | Path, what: str = "file") -> Any:
    """Parse ``path``; a missing, unreadable or malformed file is a DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, f"{what} does not exist")
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise DataError(path, f"cannot read the {what} ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise DataError(path, f"{what} is not valid JSON ({exc})") from exc
