"""Out-of-core statistics over Parquet: same table as in memory, bounded reads, clear errors."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from hikisig.cli import app, main
from hikisig.errors import InputError
from hikisig.stats import case_control
from hikisig.stats import outofcore as ooc
from hikisig.stats import univariate as uv
from hikisig.stats.outofcore import ParquetSource, case_control_parquet


def _study(n: int = 240, p: int = 23, seed: int = 4) -> dict:
    """Lognormal analytes with NaN, zeros, ties; unknown groups, sexes and ages."""
    rng = np.random.default_rng(seed)
    x = rng.lognormal(mean=2.0, sigma=0.7, size=(n, p))
    x[rng.random(x.shape) < 0.07] = np.nan
    x[:4, 2] = 0.0  # values <= 0: left out of the fold change and geometric mean
    x[:, 5] = np.round(x[:, 5])  # ties
    x[:, 6] = np.nan  # an empty analyte
    x[: n // 2, 8] = np.nan  # half missing
    case = np.where(rng.random(n) < 0.05, None, rng.random(n) < 0.45).astype(object)
    sex = np.where(rng.random(n) < 0.6, "M", "F").astype(object)
    sex[rng.random(n) < 0.04] = None
    age = rng.integers(18, 65, n).astype(float)
    age[rng.random(n) < 0.03] = np.nan
    sev = np.where(rng.random(n) < 0.1, np.nan, rng.normal(20, 5, n))
    X = pd.DataFrame(x, columns=[f"m{j:02d}" for j in range(p)])
    return {"X": X, "case": case, "sex": sex, "age": pd.DataFrame({"age": age}), "sev": sev}


def _write(frame: pd.DataFrame, path: Path, row_group: int) -> Path:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path,
                   row_group_size=row_group)
    return path


def _assert_same(ooc_table: pd.DataFrame, mem: pd.DataFrame, rtol: float = 1e-10) -> None:
    assert list(ooc_table.columns) == list(mem.columns)
    assert len(ooc_table) == len(mem)
    for c in mem.columns:
        a, b = ooc_table[c], mem[c]
        if b.dtype.kind == "f":
            assert (a.isna() == b.isna()).all(), c
            np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=rtol, atol=1e-12,
                                       equal_nan=True, err_msg=c)
        else:
            assert (a.fillna("").astype(str) == b.fillna("").astype(str)).all(), c


@pytest.fixture(scope="module")
def study() -> dict:
    return _study()


@pytest.fixture(scope="module")
def in_memory(study: dict) -> pd.DataFrame:
    return case_control(study["X"], study["case"], by=study["sex"], covariates=study["age"],
                        severity=study["sev"])


@pytest.mark.parametrize("block_cells", [4_000_000, 900])
def test_parquet_equals_in_memory(tmp_path: Path, study: dict, in_memory: pd.DataFrame,
                                  block_cells: int) -> None:
    path = _write(study["X"], tmp_path / "x.parquet", row_group=37)
    assert len(ParquetSource(path).pieces) == 7
    t = case_control_parquet(path, list(study["X"].columns), study["case"], by=study["sex"],
                             covariates=study["age"], severity=study["sev"],
                             block_cells=block_cells, n_jobs=2)
    _assert_same(t, in_memory)
    assert set(t["test"]) == {"welch", "student", "mwu", "lm", "pearson", "spearman"}


@pytest.mark.parametrize("additive", [False, True])
def test_parquet_with_negative_values_equals_in_memory(tmp_path: Path, study: dict,
                                                       additive: bool) -> None:
    # z-scores (about half negative): on the default scale the log-scale columns come from the
    # positive values; with additive=True nothing is logged
    X = study["X"]
    Z = (X - X.mean()) / X.std()
    Z["m06"] = np.nan
    Z.loc[:9, "m03"] = 0.0
    extra = pd.DataFrame({"diff": Z["m00"].to_numpy() - Z["m01"].to_numpy()})
    path = _write(Z, tmp_path / "z.parquet", row_group=37)
    kw = {"by": study["sex"], "covariates": study["age"], "severity": study["sev"],
          "additive": additive}
    t = case_control_parquet(path, list(Z.columns), study["case"], extra=extra, block_cells=900,
                             n_jobs=2, **kw)
    mem = case_control(Z.join(extra), study["case"], **kw)
    _assert_same(t, mem)
    fold = ["fold_change", "fold_change_ci_low", "fold_change_ci_high", "gmean_case",
            "gmean_control"]
    if additive:
        assert t[fold].isna().all().all()
        assert set(t.loc[t["test"] == "welch", "effect_type"]) == {"mean_difference"}
        assert set(t.loc[t["test"] == "lm", "method"]) == {"value ~ group * by + covariates"}
    else:
        two_group = (t["analyte"] == "m00") & ~t["test"].isin(["pearson", "spearman"])
        assert t.loc[two_group, "fold_change"].notna().all()
    moments_only = case_control_parquet(path, list(Z.columns), study["case"], tests=["welch"],
                                        quantiles=False, block_cells=900, **kw)
    _assert_same(moments_only, case_control(Z, study["case"], tests=["welch"], quantiles=False,
                                            **kw))


def test_folder_of_files_float32_and_extra_columns(tmp_path: Path, study: dict) -> None:
    X = study["X"].astype(np.float32)
    folder = tmp_path / "dataset"
    folder.mkdir()
    _write(X.iloc[:100], folder / "part-0.parquet", row_group=40)
    _write(X.iloc[100:], folder / "part-1.parquet", row_group=1000)
    (folder / "_SUCCESS").write_text("")
    extra = pd.DataFrame({"ratio": X["m00"].to_numpy(np.float64) / X["m01"].to_numpy(np.float64)})
    src = ParquetSource(folder)
    assert src.n_rows == len(X) and len(src.files) == 2
    names = [f"name_{c}" for c in X.columns]
    t = case_control_parquet(src, list(X.columns), study["case"], by=study["sex"],
                             covariates=study["age"], names=names, extra=extra,
                             tests=["welch", "mwu"], block_cells=700, n_jobs=1)
    full = X.astype(np.float64).set_axis(names, axis=1).join(extra)
    _assert_same(t, case_control(full, study["case"], by=study["sex"], covariates=study["age"],
                                 tests=["welch", "mwu"]))


def test_moments_only_is_one_pass(tmp_path: Path, study: dict, monkeypatch: pytest.MonkeyPatch
                                  ) -> None:
    path = _write(study["X"], tmp_path / "x.parquet", row_group=50)

    def no_columns(*_: object) -> None:
        raise AssertionError("whole columns were read")

    monkeypatch.setattr(ooc, "_columns_task", no_columns)
    kw = {"by": study["sex"], "covariates": study["age"], "tests": ["welch", "student"],
          "quantiles": False}
    t = case_control_parquet(path, list(study["X"].columns), study["case"], block_cells=2000, **kw)
    mem = case_control(study["X"], study["case"], **kw)
    _assert_same(t, mem)
    assert t["median_case"].isna().all() and t["mean_case"].notna().any()


def test_reads_are_bounded_by_the_block(tmp_path: Path, study: dict,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(study["X"], tmp_path / "x.parquet", row_group=30)
    sizes: list[int] = []
    real = ooc._read_values

    def spy(files, columns, pieces, na_codes=()):  # type: ignore[no-untyped-def]
        out = real(files, columns, pieces, na_codes)
        sizes.append(out.size)
        return out

    monkeypatch.setattr(ooc, "_read_values", spy)
    block = 500
    case_control_parquet(path, list(study["X"].columns), study["case"], by=study["sex"],
                         block_cells=block, n_jobs=1)
    # tiles: one row group (30 rows) x 16 columns; blocks of whole columns: 2 x 240 values
    assert sizes and max(sizes) <= block
    assert len(sizes) > 20


def test_mergeable_sums_equal_one_shot() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(1e3, 2.0, size=(300, 5))
    x[rng.random(x.shape) < 0.1] = np.nan
    x[:, 4] = np.nan
    masks = rng.random((300, 3)) < 0.5
    whole = uv.moment_sums(x, masks)
    cuts = [0, 7, 7, 150, 299, 300]  # includes an empty chunk
    parts = [uv.moment_sums(x[a:b], masks[a:b]) for a, b in pairwise(cuts)]
    merged = parts[0]
    for m in parts[1:]:
        merged = merged.merge(m)
    np.testing.assert_array_equal(merged.n, whole.n)
    np.testing.assert_allclose(merged.mean, whole.mean, rtol=1e-13, equal_nan=True)
    np.testing.assert_allclose(merged.var, whole.var, rtol=1e-10, equal_nan=True)
    ref = np.nanvar(np.where(masks[:, [0]], x, np.nan)[:, :4], axis=0, ddof=1)
    np.testing.assert_allclose(merged.var[0, :4], ref, rtol=1e-10)

    y = rng.lognormal(3, 0.5, size=(300, 4))
    y[rng.random(y.shape) < 0.1] = np.nan
    design = uv.interaction_design(rng.random(300) < 0.5, rng.random(300) < 0.5,
                                   rng.normal(40, 10, (300, 1)))
    one = uv.normal_equations(y, design)
    eqs = [uv.normal_equations(y[a:b], design[a:b]) for a, b in pairwise(cuts)]
    acc = eqs[0]
    for e in eqs[1:]:
        acc = acc.merge(e)
    a, b = uv.solve_interaction(acc), uv.solve_interaction(one)
    for key in ("F", "M", "interaction"):
        for stat in ("estimate", "se", "p"):
            np.testing.assert_allclose(a[key][stat], b[key][stat], rtol=1e-10)


def test_missing_and_bad_columns_name_file_and_column(tmp_path: Path, study: dict) -> None:
    path = _write(study["X"].assign(label="x"), tmp_path / "x.parquet", row_group=100)
    with pytest.raises(InputError, match=r"x\.parquet: column 'nope': no column 'nope'"):
        case_control_parquet(path, ["m00", "nope"], study["case"])
    with pytest.raises(InputError, match=r"column 'label': expected numbers, found string"):
        case_control_parquet(path, ["m00", "label"], study["case"])
    folder = tmp_path / "ds"
    folder.mkdir()
    _write(study["X"], folder / "a.parquet", row_group=100)
    _write(study["X"].drop(columns=["m03"]), folder / "b.parquet", row_group=100)
    with pytest.raises(InputError, match=r"b\.parquet: column 'm03': no column 'm03'"):
        ParquetSource(folder)
    with pytest.raises(InputError, match="not found"):
        ParquetSource(tmp_path / "absent.parquet")
    with pytest.raises(ValueError, match="case has 3 values"):
        case_control_parquet(path, ["m00"], [True, False, True])


def test_cli_parquet_equals_csv(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    n = 120
    wide = pd.DataFrame({
        "id": [f"P{i:03d}" for i in range(n)], "sex": rng.choice(["M", "F"], n),
        "age": rng.integers(20, 60, n), "group": rng.choice(["case", "control", "other"], n,
                                                            p=[0.45, 0.45, 0.1]),
        "Orn": rng.lognormal(4, 0.3, n), "Arg": rng.lognormal(4.4, 0.3, n),
        "Cit": rng.lognormal(3.4, 0.3, n), "feature_1": rng.lognormal(0, 1, n),
    })
    # metadata and text columns the command is not told about are left out by both readers
    extra = {"visit": 1, "batch": rng.integers(1, 4, n), "subtype": rng.choice(["A", "B", ""], n)}
    wide.assign(**extra).to_csv(tmp_path / "w.csv", index=False)
    wide.assign(**extra).to_parquet(tmp_path / "w.parquet", index=False)
    wide[["id", "Orn", "Arg", "Cit", "feature_1"]].to_parquet(tmp_path / "m.parquet", index=False)
    wide[["id", "sex", "age", "group"]].to_csv(tmp_path / "participants.csv", index=False)
    runner = CliRunner()
    common = ["--out"]
    a = runner.invoke(app, ["stats", str(tmp_path / "w.csv"), "--covariates", "age",
                            *common, str(tmp_path / "a.csv")])
    assert a.exit_code == 0, a.output
    assert "column(s) not analysed (metadata or text): visit, batch, subtype" in a.output
    b = runner.invoke(app, ["stats", str(tmp_path / "w.parquet"), "--block-size", "1000",
                            *common, str(tmp_path / "b.csv")])
    assert b.exit_code == 0, b.output
    assert "column(s) not analysed" in b.output and "visit, batch, subtype" in b.output
    c = runner.invoke(app, ["stats", str(tmp_path / "m.parquet"), "--participants",
                            str(tmp_path / "participants.csv"), *common, str(tmp_path / "c.csv")])
    assert c.exit_code == 0, c.output
    ta = pd.read_csv(tmp_path / "a.csv")
    assert {"ornithine", "orn_arg_ratio", "feature_1"} <= set(ta["analyte"])
    assert not {"visit", "batch", "subtype"} & set(ta["analyte"])
    assert ta["formula"].str.contains("ornithine / arginine").any()
    for other in ("b.csv", "c.csv"):
        _assert_same(pd.read_csv(tmp_path / other), ta)


def _main_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_cli_parquet_errors(tmp_path: Path, study: dict, capsys: pytest.CaptureFixture[str]
                            ) -> None:
    study["X"].assign(id=range(len(study["X"])), group="case").to_parquet(tmp_path / "x.parquet")
    x = str(tmp_path / "x.parquet")
    assert "x.parquet: column 'sex': no column 'sex'" in _main_error(capsys, "stats", x)
    assert "need at least 2 'case' and 2 'control'" in _main_error(capsys, "stats", x, "--by",
                                                                    "none")
    assert "--participants is for a Parquet file or folder" in _main_error(
        capsys, "stats", str(tmp_path / "w.csv"), "--participants", "p.csv")
    assert "--scheduler needs --engine dask" in _main_error(
        capsys, "stats", x, "--scheduler", "tcp://127.0.0.1:1")
