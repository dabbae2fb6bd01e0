"""Workbench: fine-tune language models from a browser, a YAML file or the command line."""

__version__ = "0.1.0"
