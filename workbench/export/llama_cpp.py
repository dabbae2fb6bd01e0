"""llama.cpp's own converters, as `llama-cpp-python`'s source distribution on PyPI ships them.

`python -m workbench.export.llama_cpp install` (run by `make setup`) downloads that sdist once with pip and keeps
`convert_hf_to_gguf.py`, `convert_lora_to_gguf.py`, their `conversion/` package and `gguf-py/` in the tools
folder; nothing is compiled. Quantisations below 8 bits need llama.cpp's `llama-quantize` program, which is used
where it is on PATH and never built here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from workbench import home
from workbench.errors import WorkbenchError

# The sdist whose vendored llama.cpp we convert with; its converters run with our transformers 5 and torch 2.13.
LLAMA_CPP_PYTHON = "0.3.36"
# What the converters import from their own checkout, besides the scripts themselves.
_KEEP = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion", "gguf-py", "LICENSE")
_COMPLETE = ".complete"
INSTALL_COMMAND = "python -m workbench.export.llama_cpp install"


class ConverterMissingError(WorkbenchError):
    """llama.cpp's converter (or quantizer) is not on this machine; the message says how to get it."""

    category = "config"


def converter_dir() -> Path:
    """Where the converter scripts are kept: `<tools>/llama.cpp-<version>/`."""
    return home.tools_dir() / f"llama.cpp-{LLAMA_CPP_PYTHON}"


def require_converter() -> Path:
    """The converter folder, or a ConverterMissingError naming the command that installs it."""
    folder = converter_dir()
    if not (folder / _COMPLETE).is_file():
        raise ConverterMissingError(
            f"llama.cpp's GGUF converter is not installed in {folder}: run `{INSTALL_COMMAND}` (or `make setup`); "
            f"it downloads llama-cpp-python {LLAMA_CPP_PYTHON}'s source from PyPI once, nothing is compiled"
        )
    return folder


def converter_command(script: str, *args: str) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run one of the converter scripts."""
    folder = require_converter()
    env = {**os.environ}
    # The vendored gguf-py first: the converter needs a newer `gguf` than the PyPI package we pin.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder / "gguf-py"), str(folder), env.get("PYTHONPATH")) if p)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env["HF_HUB_OFFLINE"] = "1"  # it reads local folders only
    return [sys.executable, str(folder / script), *args], env


def quantizer() -> str | None:
    """The path of llama.cpp's `llama-quantize` (or its older name `quantize`), if installed."""
    return shutil.which("llama-quantize") or shutil.which("llama.cpp-quantize")


def install(force: bool = False) -> Path:
    """Download llama-cpp-python's sdist with pip and keep the converters; returns their folder."""
    folder = converter_dir()
    if (folder / _COMPLETE).is_file() and not force:
        return folder
    with tempfile.TemporaryDirectory(prefix="llama-cpp-sdist-") as scratch:
        download = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--quiet"]
        download += ["--dest", scratch, f"llama-cpp-python=={LLAMA_CPP_PYTHON}"]
        result = subprocess.run(download, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        sdists = list(Path(scratch).glob("llama_cpp_python-*.tar.gz"))
        if result.returncode != 0 or not sdists:
            raise WorkbenchError(
                f"pip could not download llama-cpp-python {LLAMA_CPP_PYTHON}:\n{result.stderr[-2000:]}"
            )
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        try:
            _extract(sdists[0], staging)
            (staging / _COMPLETE).touch()
            if folder.exists():
                shutil.rmtree(folder)
            staging.rename(folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def _extract(sdist: Path, into: Path) -> None:
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            parts = Path(member.name).parts
            # llama_cpp_python-<version>/vendor/llama.cpp/<what we keep>/...
            if len(parts) < 4 or parts[1:3] != ("vendor", "llama.cpp") or parts[3] not in _KEEP:
                continue
            member.name = str(Path(*parts[3:]))
            archive.extract(member, into, filter="data")
    missing = [name for name in _KEEP if not (into / name).exists()]
    if missing:
        raise WorkbenchError(f"{sdist.name} lacks vendor/llama.cpp/{', '.join(missing)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.export.llama_cpp")
    sub = parser.add_subparsers(dest="command", required=True)
    install_cmd = sub.add_parser("install", help="download llama.cpp's GGUF converter (once)")
    install_cmd.add_argument("--force", action="store_true", help="download it again")
    args = parser.parse_args(argv)
    try:
        folder = install(force=args.force)
    except WorkbenchError as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    sys.stdout.write(f"llama.cpp converter in {folder}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
