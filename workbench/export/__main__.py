"""The export child process: `python -m workbench.export merge|gguf-check|gguf-lora-check ...` (see child.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.export.child import report_failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.export")
    sub = parser.add_subparsers(dest="command", required=True)
    merge = sub.add_parser("merge", help="merge a finished run's adapter into its base model")
    merge.add_argument("run_dir", type=Path, help="the run folder")
    merge.add_argument("output", type=Path, nargs="?", help="model folder to write (default: RUN_DIR/merged)")
    check = sub.add_parser("gguf-check", help="load GGUF files back and compare their greedy replies")
    check.add_argument("model", type=Path, help="the model folder the GGUF files were made from")
    check.add_argument("report", type=Path, help="JSON file to write the findings to")
    check.add_argument("gguf", type=Path, nargs="+", help="GGUF files to check")
    lora = sub.add_parser("gguf-lora-check", help="compare a GGUF LoRA's tensors with the adapter's")
    lora.add_argument("adapter", type=Path, help="the PEFT adapter folder the GGUF LoRA was made from")
    lora.add_argument("report", type=Path, help="JSON file to write the findings to")
    lora.add_argument("gguf", type=Path, help="the GGUF LoRA file")
    args = parser.parse_args(argv)

    if args.command == "merge":
        from workbench.export import _merge
        from workbench.runs.files import RunFiles

        files = RunFiles(args.run_dir.resolve())
        return report_failures(lambda: _merge(files, (args.output or files.root / "merged").resolve()))
    from workbench.export import gguf_check

    if args.command == "gguf-lora-check":
        return report_failures(lambda: gguf_check.check_lora(args.adapter, args.gguf, args.report))
    return report_failures(lambda: gguf_check.check_files(args.model, args.gguf, args.report))


if __name__ == "__main__":
    sys.exit(main())
