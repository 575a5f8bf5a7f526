"""`make demo`: the main job on the shipped sample tree.

The sample tree (examples/minikernel) is copied to a fresh git checkout
under the output directory, so the shipped files are never edited; then
`mmconvert scan` and `mmconvert series` run on it as a user would.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=mmconvert demo", "-c",
                    "user.email=demo@mmconvert.invalid", *args], cwd=cwd, check=True,
                   capture_output=True)


def main(out: str = "out/demo") -> int:
    out_dir = (ROOT / out).resolve()
    tree = out_dir / "minikernel"
    series = out_dir / "series"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    shutil.copytree(ROOT / "examples/minikernel", tree, ignore=shutil.ignore_patterns("*.o"))
    _git(tree, "init", "-q", "-b", "master")
    _git(tree, "add", "-A")
    _git(tree, "commit", "-q", "-m", "Import the sample tree")
    mm = [sys.executable, "-m", "mmconvert.cli"]
    print(f"$ mmconvert scan {tree.relative_to(ROOT)}", flush=True)
    if subprocess.run([*mm, "scan", str(tree)], cwd=ROOT).returncode:
        return 1
    print(f"\n$ mmconvert series {tree.relative_to(ROOT)} -o {series.relative_to(ROOT)}",
          flush=True)
    if subprocess.run([*mm, "series", str(tree), "-o", str(series)], cwd=ROOT).returncode:
        return 1
    covers = sorted(series.glob("0000-*.patch"))
    print(f"\nsample tree:  {tree}")
    print(f"series:       {series}")
    if covers:
        print(f"cover letter: {covers[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
