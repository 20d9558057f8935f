"""`make test-mutation`: mutation testing of the pure core with mutmut, over the unit tier.

mutmut expects the code under `src/`, so the two source trees and the tests are mirrored
into `.mutation/` (only changed files are copied, keeping mutmut's cache of earlier
verdicts valid), mutmut runs there with `[tool.mutmut]` from pyproject.toml, and this
script prints each pure module's score: killed / (killed + survived). A timeout counts as
killed (the mutant made a test hang), "no tests" as survived. Lines marked
`# pragma: no mutate` carry the reason the mutant would be equivalent; they are listed.
It exits 1 when a module scores under MIN_SCORE.

    python tools/mutation.py [--max-children N] [--stage DIR] [--tests PATH]... [--keep]
                             [GLOB ...]

GLOB limits the run to matching mutant names (`'prs_runner.step.thresholds*'`), --tests to
some test files, --stage gives a run its own mirror (so two runs can go on at once).
"""

from __future__ import annotations

import argparse
import filecmp
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MIN_SCORE = 90.0
TREES = {  # mirror path -> repository path
    "src/prs_runner": "runner-image/src/prs_runner",
    "src/prs_operator": "operator/src/prs_operator",
    "tests": "tests",
    "crds": "crds",
    "helm": "helm",
    "docs": "docs",
    "mkdocs.yml": "mkdocs.yml",
    "tools/step_reference.py": "tools/step_reference.py",  # tests/unit/test_step_reference.py
    "README.md": "README.md",
    "pyproject.toml": "pyproject.toml",
    # tests/unit/test_dependency_split.py
    "operator/requirements.in": "operator/requirements.in",
    "operator/requirements.lock": "operator/requirements.lock",
    "runner-image/requirements.lock": "runner-image/requirements.lock",
}
KILLED = {1, 3, 36, 24, -24, 152, 255, 37}
SURVIVED = {0, 5, 33}
PRAGMA = re.compile(r"#\s*pragma:\s*no mutate\b(.*)$")


def mirror(source: Path, target: Path) -> None:
    """Copy SOURCE to TARGET, touching only files whose bytes changed; drop stale files."""
    if source.is_file():
        if not target.exists() or not filecmp.cmp(source, target, shallow=False):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        return
    target.mkdir(parents=True, exist_ok=True)
    names = {p.name for p in source.iterdir() if p.name != "__pycache__"}
    for stale in {p.name for p in target.iterdir()} - names - {"__pycache__"}:
        path = target / stale
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    for name in sorted(names):
        mirror(source / name, target / name)


def pure_modules() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mutmut"]
    return list(config["only_mutate"])


def run_mutmut(stage: Path, max_children: int, only: list[str], tests: list[str],
               keep: bool) -> int:
    for mirrored, original in TREES.items():
        mirror(REPO / original, stage / mirrored)
    if tests:  # the staged pyproject selects only these test files
        staged = stage / "pyproject.toml"
        selection = 'pytest_add_cli_args_test_selection = ["tests/unit"]'
        config = staged.read_text()
        assert selection in config
        staged.write_text(config.replace(selection, "pytest_add_cli_args_test_selection = "
                                         + json.dumps(tests)))
    # mutmut keeps earlier verdicts; they can be stale after a test changed, so each run
    # starts from no verdicts unless asked to keep them.
    if not keep:
        shutil.rmtree(stage / "mutants", ignore_errors=True)
    mutmut = Path(sys.executable).parent / "mutmut"
    command = [str(mutmut), "run", f"--max-children={max_children}", *only]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    if sys.stdout.isatty():
        return subprocess.run(command, cwd=stage, env=env).returncode
    # In a log (CI) mutmut's spinner would write thousands of carriage-return updates:
    # keep its other lines and the spinner's last state only.
    done = subprocess.run(command, cwd=stage, env=env, stdout=subprocess.PIPE, text=True)
    print(quiet_spinner(done.stdout), flush=True)
    return done.returncode


def quiet_spinner(output: str) -> str:
    """OUTPUT with each run of spinner states (lines or carriage-return segments that start
    with a braille spinner character) cut down to its last state."""
    kept: list[str] = []
    spinning = False
    for state in output.replace("\r", "\n").split("\n"):
        if not state.strip():
            continue
        spinner = "\u2800" <= state[0] <= "\u28ff"
        if spinner and spinning:
            kept[-1] = state
        else:
            kept.append(state)
        spinning = spinner
    return "\n".join(kept)


def repository_path(module: str) -> tuple[Path, str]:
    """Where a mirrored module (`src/prs_runner/step/spec.py`) lives in the repository, and
    its name within its package (`step/spec.py`)."""
    package, rest = module.removeprefix("src/").split("/", 1)
    return REPO / TREES[f"src/{package}"] / rest, rest


def exclusions(module: str) -> list[str]:
    path, name = repository_path(module)
    return [f"{name}:{number}: {match.group(1).strip(' :-(')}"
            for number, line in enumerate(path.read_text().splitlines(), 1)
            if (match := PRAGMA.search(line))]


def scores(stage: Path, only: list[str]) -> list[tuple[str, int, int, int]]:
    rows = []
    for module in pure_modules():
        dotted = module.removeprefix("src/").removesuffix(".py").replace("/", ".")
        if only and not any(fnmatch.fnmatch(dotted, o) or o.startswith(dotted + ".")
                            for o in only):
            continue
        meta = stage / "mutants" / (module + ".meta")
        codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
        killed = sum(1 for c in codes.values() if c in KILLED)
        survived = sum(1 for c in codes.values() if c in SURVIVED)
        rows.append((module.removeprefix("src/"), killed, survived, len(codes)))
    return rows


def report(rows: list[tuple[str, int, int, int]]) -> tuple[int, int]:
    """Print the table; (modules at or above MIN_SCORE, modules under it)."""
    print(f"\n{'module':<40} {'mutants':>8} {'killed':>7} {'survived':>9} {'score':>7}")
    passed, failed, all_killed, all_checked = 0, 0, 0, 0
    for module, killed, survived, total in rows:
        checked = killed + survived
        all_killed, all_checked = all_killed + killed, all_checked + checked
        if not checked:  # nothing to mutate (declarations only)
            print(f"{module:<40} {total:>8} {killed:>7} {survived:>9} {'n/a':>7}")
            continue
        score = 100.0 * killed / checked
        passed, failed = (passed + 1, failed) if score >= MIN_SCORE else (passed, failed + 1)
        print(f"{module:<40} {total:>8} {killed:>7} {survived:>9} {score:>6.1f}%")
    overall = 100.0 * all_killed / all_checked if all_checked else 0.0
    print(f"{'all pure modules':<40} {all_checked:>8} {all_killed:>7} "
          f"{all_checked - all_killed:>9} {overall:>6.1f}%")
    return passed, failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--stage", type=Path, default=REPO / ".mutation")
    parser.add_argument("--tests", action="append", default=[],
                        help="a test file to run (repeatable; default: tests/unit)")
    parser.add_argument("--keep", action="store_true",
                        help="keep earlier verdicts (faster; stale after a test changed)")
    parser.add_argument("only", nargs="*", help="mutant name globs, e.g. 'prs_runner.step*'")
    args = parser.parse_args()
    code = run_mutmut(args.stage.resolve(), args.max_children, args.only, args.tests, args.keep)
    if code not in (0,):
        print(f"mutmut exited with {code}", file=sys.stderr)
        return code
    passed, failed = report(scores(args.stage.resolve(), args.only))
    excluded = [line for module in pure_modules() for line in exclusions(module)]
    print(f"\nequivalent mutants excluded with `# pragma: no mutate` ({len(excluded)}):")
    print("\n".join(f"  {line}" for line in excluded) or "  none")
    if failed:
        print(f"\nFAILED: a pure module scores under {MIN_SCORE:.0f}% "
              "(`cd .mutation && mutmut results` lists the survivors)", file=sys.stderr)
    # Modules at the bar and under it, in the form test runners close with.
    print(f"mutation: {passed} passed, {failed} failed")
    return 0 if failed == 0 and passed else 1


if __name__ == "__main__":
    sys.exit(main())
