"""``attnsim results DIR --csv FILE / --parquet FILE``: the synthetic store exported, read back with
the csv module and pyarrow, values checked against ``synthetic_store``'s closed forms; Parquet columns
typed; without pyarrow a one-line refusal and no file."""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import synthetic_store as syn
from attnsim.studies.cli import main


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("results")
    syn.make_store(directory, failing=(("flat", "xlm", 4096),))
    return directory


def test_csv_and_parquet_hold_the_same_table(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parquet, table_csv = tmp_path / "r.parquet", tmp_path / "r.csv"
    assert main(["results", str(store), "--parquet", str(parquet), "--csv", str(table_csv)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("wrote 24 rows x ") and lines[0].endswith(f"to {parquet}")
    assert lines[1].endswith(f"to {table_csv}")
    with table_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    table = pq.read_table(parquet)
    assert table.num_rows == len(rows) == 24
    assert table.column_names == list(rows[0])
    schema = {field.name: str(field.type) for field in table.schema}
    assert schema["seq"] == "int64" and schema["attention_latency_s"] == "double"
    assert schema["design"] == schema["status"] == "string"
    data = table.to_pylist()
    for record in data:
        if record["status"] != "ok":
            assert (record["design"], record["model"], record["seq"]) == ("flat", "xlm", 4096)
            assert record["latency_s"] is None and record["error"] == "MappingError: synthetic failure"
            continue
        if record["sizing"] == "none":
            expected = syn.attention_latency_s(record["design"], record["model"], record["seq"])
            assert record["attention_latency_s"] == expected                    # doubles round-trip exactly
    for record, row in zip(data, rows):
        assert str(record["key"]) == row["key"]
        assert ("" if record["latency_s"] is None else repr(record["latency_s"])) == row["latency_s"]


def test_csv_without_a_file_goes_to_stdout(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["results", str(store), "--csv"]) == 0
    assert capsys.readouterr().out.startswith("key,study,kind,status,error,")
    assert not (store / "results.csv").exists()


def test_parquet_without_pyarrow_is_refused(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)              # import pyarrow -> ImportError
    target = tmp_path / "r.parquet"
    assert main(["results", str(store), "--parquet", str(target)]) == 2
    assert capsys.readouterr().err == ("attnsim: error: --parquet: needs pyarrow, which is not installed "
                                       "(pip install 'attnsim[parquet]'); --csv FILE writes the same table as CSV\n")
    assert not target.exists()


def test_missing_output_folder(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "nope" / "r.parquet"
    assert main(["results", str(store), "--parquet", str(target)]) == 2
    assert capsys.readouterr().err == (f"attnsim: error: --parquet {target}: cannot write there: the directory "
                                       f"{target.parent} does not exist\n")
