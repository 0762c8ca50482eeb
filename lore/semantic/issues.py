"""A validation issue: what is wrong, where (file and line), and how to fix it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class Issue(BaseModel):
    """One problem found in a semantic layer.

    >>> Issue(code="unknown_column", message="no column x", file="a.yaml", line=3).render()
    'a.yaml:3: [unknown_column] no column x'
    """

    model_config = ConfigDict(frozen=True)

    code: str
    message: str
    severity: Literal["error", "warning"] = "error"
    file: str | None = None
    line: int | None = None
    path: str | None = None
    hint: str | None = None

    def render(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        text = f"{where}[{self.code}] {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text
