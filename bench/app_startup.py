"""Time from `python app.py` to the first page served, the way a user starts the workbench.

    python bench/app_startup.py [--rounds 5]

Each round starts the app with an empty data directory (the converted bundled model is shared, as after the
first start on any machine), fetches the page until it answers, and stops the app. Prints each time and the
median; the target is under 5 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.ui.browser import free_port  # noqa: E402
from workbench import models  # noqa: E402


def one_start(home: Path) -> float:
    port = free_port()
    env = {**os.environ, "WORKBENCH_HOME": str(home), "GRADIO_ANALYTICS_ENABLED": "False"}
    launched = time.time()
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                html = urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=5).read().decode()
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError("the app exited before serving the page") from None
                time.sleep(0.05)
        ready = time.time() - launched
        assert "Workbench" in html
        return ready
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    model_dir = models.resolve("smollm2-135m-instruct").path
    os.environ["WORKBENCH_MODELS"] = str(Path(model_dir).parent)
    times = []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="bench-startup-") as home:
            times.append(one_start(Path(home)))
        time.sleep(2)  # let the previous launcher leave
    print("launch to page served, s:", " ".join(f"{t:.2f}" for t in times))
    print(f"median {statistics.median(times):.2f} s (target < 5 s)")


if __name__ == "__main__":
    main()
