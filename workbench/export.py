"""Packing a run's adapter for download: the adapter files, tokenizer and model card in one zip."""

from __future__ import annotations

import zipfile
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.run_files import RunFiles


def zip_adapter(files: RunFiles, output: Path | None = None) -> Path:
    """Write `<run>-adapter.zip` (or `output`) atomically and return its path."""
    if not (files.adapter / "adapter_config.json").is_file():
        raise WorkbenchError(f"run {files.root.name} has no adapter yet: it has not finished")
    output = Path(output) if output else files.root / f"{files.root.name}-adapter.zip"
    tmp = output.with_name(f".{output.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(files.adapter.rglob("*")):
            if path.is_file():
                zf.write(path, Path("adapter") / path.relative_to(files.adapter))
    tmp.replace(output)
    return output
