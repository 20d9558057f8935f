"""The record scan compiled as other machines compile it: without SSE2 (ARM, say). This
machine builds the SSE2 path; that build takes the plain loop that only a block's last few
bytes take here. It needs the C compiler the install needed, and is held to the installed
module on random blocks."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import shutil
import subprocess
import sysconfig
from pathlib import Path
from types import ModuleType

import numpy as np

from prs_runner.planning import record_scan

SOURCE = Path(record_scan.__file__).with_name("record_scan.c")


def build(folder: Path, undefine: tuple[str, ...]) -> ModuleType:
    compiler = shutil.which("cc") or shutil.which("gcc")
    assert compiler is not None, "the C compiler the install used"
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    target = folder / f"record_scan{suffix}"
    subprocess.run([compiler, "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                    *(f"-U{name}" for name in undefine),
                    f"-I{sysconfig.get_paths()['include']}", str(SOURCE), "-o", str(target)],
                   check=True, capture_output=True, text=True)
    loader = importlib.machinery.ExtensionFileLoader("record_scan", str(target))
    spec = importlib.util.spec_from_file_location("record_scan", target, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_a_build_without_sse2_scans_as_this_one(tmp_path: Path) -> None:
    portable = build(tmp_path, ("__SSE2__",))
    rng = np.random.default_rng(11)
    alphabet = np.frombuffer(b'",\n\rab', dtype=np.uint8)
    for length in [*range(0, 80), 1000, 4099]:
        block = rng.choice(alphabet, length).tobytes()
        for args in ((True, False, -1, 0), (True, True, ord("a"), -1), (False, False, -1, 0)):
            assert portable.scan(block, *args) == record_scan.scan(block, *args), (block, args)
