"""CLI start-up benchmark: `jeudis --help` and `jeudis item list` against `import click`.

    python bench/cli_startup.py              # best of 10 runs each
    python bench/cli_startup.py --repeat 20 --json

Each run is a separate process (`python -m newsletter ...`, the same code as the `jeudis`
script) timed from spawn to exit; the yardstick is `python -c "import click"`, the least any
click program pays. `item list` runs against a fresh, initialised JEUDIS_HOME in a temporary
folder (an empty queue: what is measured is start-up, not the query). Prints a Markdown table
with the best time of each and its ratio to the yardstick.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = {
    "python -c 'import click'": ["-c", "import click"],
    "jeudis --help": ["-m", "newsletter", "--help"],
    "jeudis item list": ["-m", "newsletter", "item", "list"],
}


def best_of(args: list[str], env: dict[str, str], repeat: int) -> float:
    """The fastest of `repeat` runs of `python ARGS`, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "JEUDIS_HOME": str(Path(tmp) / "home")}
        env.pop("JEUDIS_DATABASE_URL", None)
        subprocess.run([sys.executable, "-m", "newsletter", "init"], env=env, check=True)
        results = {name: best_of(args, env, options.repeat) for name, args in COMMANDS.items()}
    click_time = results["python -c 'import click'"]
    if options.json:
        print(json.dumps({"seconds": results, "repeat": options.repeat}, indent=2))
        return 0
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, best of {options.repeat}\n"
    )
    print("| command | best (s) | ratio to `import click` |\n|---|---:|---:|")
    for name, seconds in results.items():
        print(f"| `{name}` | {seconds:.3f} | {seconds / click_time:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
