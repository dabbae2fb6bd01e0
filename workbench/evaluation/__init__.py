"""Evaluating a finished run (or a base model): the test set's replies, metrics and the forgetting probe.

`python -m workbench eval RUN` runs it. It loads models, so it runs in the CLI's process or a child process,
never in the UI's: only `report` (reading what was saved) is light.
"""
