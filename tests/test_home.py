"""The data home and what it stores are the user's alone: the folder 0700, the files in it 0600."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

from tests.conftest import PRESETS, REPO
from workbench import home, ratings
from workbench.data.store import store_dataset


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_data_home_is_private(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "new" / "home"))
    assert mode(home.home()) == 0o700
    assert mode(home.runs_dir()) == 0o700


def test_an_existing_open_data_home_is_closed(tmp_path, monkeypatch):
    existing = tmp_path / "open"
    existing.mkdir(mode=0o755)
    existing.chmod(0o755)
    monkeypatch.setenv("WORKBENCH_HOME", str(existing))
    assert mode(home.home()) == 0o700


def test_stored_datasets_and_ratings_are_private():
    stored = store_dataset(PRESETS / "data" / "identity.json")
    assert mode(stored.path) == 0o600
    ratings.save_rating([{"role": "user", "content": "hi"}], "hello", "go away", run=None, base="m")
    assert mode(ratings.ratings_path()) == 0o600


def test_the_command_line_writes_private_files(tmp_path):
    # The CLI sets umask 077 before it writes anything; a file made afterwards in the same process shows it.
    out = tmp_path / "umask.txt"
    code = (
        "import os; from workbench.__main__ import main; main(['jobs']); "
        f"umask = os.umask(0o022); os.umask(umask); open({str(out)!r}, 'w').write(oct(umask))"
    )
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path / "home")}
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True, capture_output=True, timeout=120)
    assert out.read_text() == "0o77"
    assert mode(out) == 0o600
