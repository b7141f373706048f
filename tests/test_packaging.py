"""Every data file under src/hikisig is shipped in the wheel (package-data patterns)."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_package_data_covers_every_data_file():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["hikisig"]
    pkg = ROOT / "src" / "hikisig"
    data_files = [p.relative_to(pkg).as_posix() for p in pkg.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts]
    not_in_package = [f for f in data_files
                      if not f.endswith(".py") or not (pkg / f).parent.joinpath("__init__.py").exists()]
    missing = [f for f in not_in_package if not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
    assert missing == []
