"""A corrupt file is the user's problem: one clear line and exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hikisig.cohort.readers import read_measurements
from hikisig.errors import InputError


@pytest.mark.parametrize(("name", "content"), [
    ("lab.parquet", b"PAR1 not really parquet"),
    ("lab.csv.gz", b"not gzip at all"),
    ("lab.xlsx", b"PK\x03\x04 broken zip"),
])
def test_corrupt_files_are_input_errors(tmp_path: Path, name: str, content: bytes):
    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(InputError) as info:
        read_measurements(f)
    assert name in str(info.value) and "cannot" in str(info.value)


def test_cli_reports_a_corrupt_file_in_one_line(tmp_path: Path):
    f = tmp_path / "lab.parquet"
    f.write_bytes(b"PAR1 nope")
    db = tmp_path / "s.db"
    subprocess.run([sys.executable, "-m", "hikisig", "--db", str(db), "init"], check=True,
                   capture_output=True)
    r = subprocess.run([sys.executable, "-m", "hikisig", "--db", str(db), "import", "measurements", str(f)],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().startswith(f"error: {f}: cannot be read")
