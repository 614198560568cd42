"""The architecture holds: one import direction (the import-linter contracts in pyproject.toml,
checked by `make lint`), no import circle anywhere, and a light CLI front door.

The contract test here shows the contracts can fail: a copy of the tree with one deliberate
upward import (kernels importing realtime) must be refused.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "profiles", "realtime", "kernels")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _graph():
    grimp = pytest.importorskip("grimp")
    return grimp.build_graph(*PACKAGES, include_external_packages=False, cache_dir=None)


def test_no_import_cycles():
    """Every import between project modules (function-level ones included) forms a DAG."""
    graph = _graph()
    modules = sorted(graph.modules)
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.find_modules_directly_imported_by(m)):
            if state.get(n) == 1:
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in modules:
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles[:10])


@pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed (the dev extra)")
def test_an_upward_import_breaks_the_contract(tmp_path):
    for pkg in PACKAGES:  # the Python sources only (profiles/ also holds users' profiles)
        for src in (ROOT / pkg).rglob("*.py"):
            dst = tmp_path / src.relative_to(ROOT)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")

    def lint() -> subprocess.CompletedProcess:
        return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tmp_path, capture_output=True,
                              text=True, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})

    clean = lint()
    assert clean.returncode == 0, clean.stdout[-2000:]
    warp = tmp_path / "kernels" / "warp.py"
    warp.write_text("import realtime.engine.loop  # noqa\n" + warp.read_text())
    broken = lint()
    assert broken.returncode != 0
    assert "kernels.warp -> realtime.engine.loop" in broken.stdout


@pytest.mark.parametrize("argv", [["--help"], ["bench", "--help"], ["live", "--help"]])
def test_the_cli_help_imports_neither_the_engine_nor_torch(argv):
    code = ("import sys, runpy\n"
            f"sys.argv = ['run.py'] + {argv!r}\n"
            "try:\n    runpy.run_path('run.py', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'numba', 'mediapipe', 'realtime.engine.loop') if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in out.stdout, out.stdout[-500:] + out.stderr[-2000:]
