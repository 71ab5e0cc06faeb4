"""``make model-mutants``: apply each ``tests/model/mutants/*.patch`` to a scratch copy
of the tree and run the default-budget model suite there; every mutant must be caught.

A mutant is a small patch that breaks a promise the model checks (a record key that
casefolds, a person's rows no longer serialized, ...). Adding one is dropping a
``.patch`` file (``git diff`` output, paths from the repository root) in this folder.

The copy reuses this environment: its packages are found first on ``PYTHONPATH``, so
nothing is installed and nothing goes to the network. Exit status 1 when a mutant
survives (or a patch no longer applies).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
PACKAGES = ("", "providers/gleantap", "providers/ivvy", "providers/yespo")


def _copy_tree(target: Path) -> None:
    """The working tree as git sees it (tracked and untracked, not ignored): no .venv,
    no caches."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.split(b"\0")  # fmt: skip
    for raw in filter(None, listed):
        name = raw.decode()
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def _environment(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(tree / p) for p in PACKAGES)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # Derandomized, as in CI: the same examples every time, so a verdict is repeatable.
    env["CI"] = env.get("CI") or "1"
    return env


def run(patch: Path | None) -> tuple[str, float, str]:
    """The model suite on a scratch copy with ``patch`` applied (``None``: unpatched)."""
    with tempfile.TemporaryDirectory(prefix="mutant-") as scratch:
        tree = Path(scratch)
        _copy_tree(tree)
        applied = subprocess.run(
            ["git", "apply", "--unsafe-paths", str(patch)] if patch else ["true"],
            cwd=tree,
            capture_output=True,
            text=True,
            check=False,
        )
        if applied.returncode != 0:
            return "does not apply", 0.0, applied.stderr.strip()
        env = _environment(tree)
        where = subprocess.run(
            [sys.executable, "-c", "import contactsync, contactsync_ivvy; print(contactsync.__file__, contactsync_ivvy.__file__)"],
            cwd=tree, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if not where.stdout.startswith(scratch) or scratch not in where.stdout.split()[-1]:
            return (
                "error",
                0.0,
                f"the copy's packages are not the ones imported: {where.stdout}{where.stderr}",
            )
        start = time.monotonic()
        suite = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/model"],
            cwd=tree, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        seconds = time.monotonic() - start
        if suite.returncode == 1:
            lines = suite.stdout.splitlines()
            first = next((line for line in lines if "AssertionError: [" in line), "")
            broken = re.search(r"AssertionError: \[(\w+)\]", first)
            test = next((line.split()[1] for line in lines if line.startswith("FAILED ")), "?")
            return "caught", seconds, f"{broken.group(1) if broken else '?'} in {test}"
        if suite.returncode == 0:
            return "SURVIVED", seconds, ""
        return "error", seconds, (suite.stdout + suite.stderr)[-2000:]


def main(argv: list[str]) -> int:
    patches = [Path(a).resolve() for a in argv] or sorted(HERE.glob("*.patch"))
    if not patches:
        print("no mutants under", HERE)
        return 1
    # A suite that fails unpatched would "catch" every mutant: it must pass first.
    verdict, seconds, detail = run(None)
    print(f"(unpatched): {'passes' if verdict == 'SURVIVED' else verdict} ({seconds:.0f} s)")
    if verdict != "SURVIVED":
        print(f"the model suite fails without any mutant: {detail}")
        return 2
    rows = []
    for patch in patches:
        verdict, seconds, detail = run(patch)
        rows.append((patch.stem, verdict, seconds, detail))
        print(f"{patch.stem}: {verdict} ({seconds:.0f} s)", flush=True)
    width = max(len(r[0]) for r in rows)
    print(f"\n{'mutant'.ljust(width)}  verdict         time  first invariant broken, by")
    for name, verdict, seconds, detail in rows:
        print(f"{name.ljust(width)}  {verdict.ljust(14)}  {seconds:4.0f}s  {detail[:160]}")
    survivors = [r[0] for r in rows if r[1] != "caught"]
    print(f"\n{len(rows) - len(survivors)} of {len(rows)} mutants caught"
          + (f"; not caught: {', '.join(survivors)}" if survivors else ""))  # fmt: skip
    return 0 if not survivors else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
