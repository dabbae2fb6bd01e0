"""Errors meant for people: each names what was wrong and where (file, row, field)."""

from __future__ import annotations

from dataclasses import dataclass


class WorkbenchError(Exception):
    """Base class; `category` tells the UI and the job store what kind of failure this was."""

    category = "internal"


@dataclass(frozen=True)
class FieldProblem:
    """One invalid setting: the dotted field path and what is wrong with it."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ConfigError(WorkbenchError):
    """One or more invalid settings, all reported together."""

    category = "config"

    def __init__(self, problems: list[FieldProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class DataError(WorkbenchError):
    """A dataset file that cannot be used, with the file, row (1-based) and field it concerns."""

    category = "data"

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None, field: str | None = None):
        self.reason, self.file, self.row, self.field = message, file, row, field
        where = ", ".join(
            part
            for part in (file, f"row {row}" if row is not None else None, f"field '{field}'" if field else None)
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)


class ModelLoadError(WorkbenchError):
    """A model reference that cannot be resolved or loaded."""

    category = "model"


class OutOfMemoryError(WorkbenchError):
    """Training ran out of device or host memory."""

    category = "oom"


def describe(err: BaseException) -> tuple[str, str]:
    """A failure's category and one sentence for people; the traceback goes to the log, not here."""
    if isinstance(err, WorkbenchError):
        return err.category, str(err)
    text = str(err)
    if isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError" or "out of memory" in text.lower():
        return "oom", "Out of memory: lower the batch size or the cutoff length, or use QLoRA."
    return "internal", f"Internal error ({type(err).__name__}: {text[:300]}); the log has the details."
