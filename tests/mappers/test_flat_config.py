"""FLAT's configuration table (mappers.flat_config, specs/mappings/flat-cloud.yaml).

Expected values: the FuseMax artifact's own configuration file (``tests/mappers/artifact/
flat_validation.csv``, cloud rows: what the artifact's FLAT model reads), and, as a second, independent
check, the fact sheet's §4.5 table ("Cloud configurations used in the figures") and §2.5, typed here by
hand: wherever the sheet states a value, the table agrees with it (the sheet rounds the spill).
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from artifact_data import SEQS as ARTIFACT_SEQS, flat_configuration
from attnsim.mappers.errors import MappingError
from attnsim.mappers.flat_config import TENSORS, available_flat_tables, flat_config, load_flat_table
from attnsim.mappers.workloads import load_workload

TABLE = load_flat_table()
SPEC = Path(__file__).resolve().parents[2] / "specs" / "mappings" / "flat-cloud.yaml"
E64 = ("bert-base", "trxl-wt103", "t5-small")
SEQS = (1024, 4096, 16384, 65536, 262144, 1048576)
ALL_SEQS = tuple(sorted(ARTIFACT_SEQS.values()))   # the artifact's 12 lengths, 512 .. 1M

# What the sheet states, per (class, seq): (off-chip tensors it names, on-chip tensors it names,
# stationarity it names, granularity, P1, spill).
STATED = {
    ("e64", 1024): ({"Q", "K", "V", "AV"}, {"QK", "A"}, ("output", "output"), "head", 256, 0.0),
    ("e64", 4096): ({"Q", "K", "V", "AV"}, {"QK", "A"}, ("output", "output"), "head", 256, 0.0078),
    ("e64", 16384): (set(), set(), None, "row", 1024, 0.0078),
    ("e64", 65536): (set(), {"AV"}, None, "row", 256, None),
    ("e64", 262144): ({"K", "QK", "A", "V"}, {"Q", "AV"}, ("weight", "weight"), "row", 1024, None),
    ("e64", 1048576): ({"K", "QK", "A", "V"}, {"Q", "AV"}, ("weight", "weight"), "row", 1024, None),
    ("xlm", 1024): ({"Q", "K"}, {"QK", "A", "V"}, ("output", None), "head", 256, None),
    ("xlm", 4096): ({"Q", "K"}, {"QK", "A", "V"}, ("output", None), "head", 256, 0.069),
    ("xlm", 16384): (set(), {"Q"}, None, "row", 1024, None),
    ("xlm", 65536): (set(), {"AV"}, None, "row", 256, None),
    ("xlm", 262144): ({"K", "QK", "A", "V"}, {"Q", "AV"}, ("weight", "weight"), "row", 1024, None),
    ("xlm", 1048576): ({"K", "QK", "A", "V"}, {"Q", "AV"}, ("weight", "weight"), "row", 1024, None),
}


def test_table_shape() -> None:
    assert available_flat_tables() == ["flat-cloud"]
    assert TABLE.model_classes == ["e64", "xlm"]
    assert TABLE.head_dims("e64") == (64, 64) and TABLE.head_dims("xlm") == (128, 128)
    for model_class in TABLE.model_classes:
        assert TABLE.seq_lengths(model_class) == list(ALL_SEQS)
    assert TABLE.source.strip()


@pytest.mark.parametrize("model", (*E64, "xlm"))
@pytest.mark.parametrize("seq", ALL_SEQS)
def test_table_equals_the_artifacts_configuration(model: str, seq: int) -> None:
    row = flat_configuration(model, seq)
    config = TABLE.config_for(load_workload(model), seq)
    for tensor in TENSORS:
        assert config.on_chip(tensor) == (row[f"{tensor}_loc"] == "onchip"), tensor
    assert (config.stationarity.QK, config.stationarity.AV) == (row["QK_stationarity"], row["AV_stationarity"])
    assert config.granularity == row["fusion_granularity"] and config.p1_rows == int(row["P1"])
    assert config.spill_fraction == float(row["proportion_spilled"])
    assert not config.inferred and config.source.startswith("artifact flat_validation.csv")


@pytest.mark.parametrize("key", sorted(STATED))
def test_table_agrees_with_what_the_fact_sheet_states(key: tuple[str, int]) -> None:
    model_class, seq = key
    config = TABLE.config_for(load_workload("bert-base" if model_class == "e64" else "xlm"), seq)
    off, on, stationarity, granularity, p1, spill = STATED[key]
    assert all(not config.on_chip(tensor) for tensor in off) and all(config.on_chip(tensor) for tensor in on)
    if stationarity is not None:
        assert config.stationarity.QK == stationarity[0]
        assert stationarity[1] is None or config.stationarity.AV == stationarity[1]
    assert config.granularity == granularity and config.p1_rows == p1
    if spill is not None:   # the sheet prints 0.0078 for 1/129 = 0.00775 and 0.069 for 0.0691
        assert config.spill_fraction == pytest.approx(spill, rel=7e-3)  # 2 significant digits: <= 0.62%


@pytest.mark.parametrize("seq", SEQS)
def test_qk_and_a_off_chip_exactly_where_the_sheet_says(seq: int) -> None:
    """§2.5: QK and A are forced off-chip at >= 256K for BERT/TrXL/T5 (and from 128K for XLM)."""
    for name in (*E64, "xlm"):
        config = flat_config(load_workload(name), seq, TABLE)
        assert config.on_chip("QK") == config.on_chip("A") == (seq < 262144)


def test_e64_models_share_one_class() -> None:
    configs = {name: flat_config(load_workload(name), 4096, TABLE) for name in E64}
    assert len({c.model_dump_json() for c in configs.values()}) == 1
    assert TABLE.models("e64") == E64


def test_default_table_is_flat_cloud() -> None:
    assert flat_config(load_workload("xlm"), 65536) == TABLE.config_for(load_workload("xlm"), 65536)


# -- errors ------------------------------------------------------------------------------------------

def _message(excinfo: pytest.ExceptionInfo[MappingError]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_unknown_sequence_length() -> None:
    with pytest.raises(MappingError) as excinfo:
        TABLE.config_for(load_workload("bert-base"), 3072)
    message = _message(excinfo)
    assert message.startswith("specs/mappings/flat-cloud.yaml: classes.e64.seqs: no configuration for seq 3072")


def test_no_class_for_the_head_widths() -> None:
    odd = load_workload("bert-base").model_copy(update={"head_dim_e": 96, "head_dim_f": 96})
    with pytest.raises(MappingError) as excinfo:
        TABLE.config_for(odd, 1024)
    assert "no model class for bert-base with head_dim_e = 96" in _message(excinfo)


def test_unknown_tensor() -> None:
    with pytest.raises(MappingError):
        TABLE.config_for(load_workload("bert-base"), 1024).on_chip("KV")


def test_unknown_table() -> None:
    with pytest.raises(MappingError) as excinfo:
        load_flat_table("flat-mars")
    assert "unknown FLAT configuration table 'flat-mars'" in _message(excinfo)


def _broken(tmp_path: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / "flat.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _entry(data: dict, model_class: str = "e64", seq: int = 1024) -> dict:  # type: ignore[type-arg]
    return data["classes"][model_class]["seqs"][seq]


@pytest.mark.parametrize("edit, expected", [
    (lambda d: _entry(d)["placement"].update(Q="sram"),
     "classes.e64.seqs.1024.placement.Q: expected 'chip' or 'dram', got 'sram'"),
    (lambda d: _entry(d)["placement"].pop("AV"), "classes.e64.seqs.1024.placement.AV: missing required key"),
    (lambda d: _entry(d).update(granularity="layer"), "classes.e64.seqs.1024.granularity: expected 'head' or 'row'"),
    (lambda d: _entry(d).update(p1_rows=0), "classes.e64.seqs.1024.p1_rows: expected a positive integer, got 0"),
    (lambda d: _entry(d).update(spill_fraction=1.5),
     "classes.e64.seqs.1024.spill_fraction: expected a number in [0, 1] or null, got 1.5"),
    (lambda d: _entry(d).update(colour="red"), "classes.e64.seqs.1024.colour: unknown key 'colour'"),
    (lambda d: _entry(d).update(p1_rows={"value": 256, "inferred": False, "reason": "x"}),
     "classes.e64.seqs.1024: p1_rows.inferred: expected true"),
    (lambda d: _entry(d).update(p1_rows={"value": 256, "inferred": True}),
     "classes.e64.seqs.1024: p1_rows.reason: expected a non-empty string"),
    (lambda d: d["classes"]["xlm"].update(head_dim_e=64, head_dim_f=64),
     "classes.xlm: same head_dim_e/head_dim_f as classes.e64"),
])
def test_bad_tables_name_file_and_key(tmp_path: Path, edit, expected: str) -> None:  # type: ignore[no-untyped-def]
    path = _broken(tmp_path, edit)
    with pytest.raises(MappingError) as excinfo:
        load_flat_table(path)
    message = _message(excinfo)
    assert message.startswith(f"{path}: "), message
    assert expected in message, message


def test_inferred_value_is_recorded(tmp_path: Path) -> None:
    path = _broken(tmp_path, lambda d: _entry(d).update(
        p1_rows={"value": 512, "inferred": True, "reason": "  a   test  "}))
    config = load_flat_table(path).config_for(load_workload("t5-small"), 1024)
    assert config.p1_rows == 512 and config.inferred["p1_rows"] == "a test"
