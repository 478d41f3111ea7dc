"""Workload specs (mappers.workloads): values, derived MAC counts, error messages.

Expected values are the fact sheet's §5 table (and XLM's published configuration) as typed into
paper_data.MODELS, and closed forms written here from the sheet (§4.4, §5 Fig. 1b).
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import paper_data as pd
from attnsim.mappers.errors import MappingError
from attnsim.mappers.workloads import (SOURCED_FIELDS, LinearGemm, Workload, available_workloads,
                               load_workload)

SPECS = Path(__file__).resolve().parents[2] / "specs" / "workloads"
BERT = load_workload("bert-base")


def _one_line_error(excinfo: pytest.ExceptionInfo[MappingError]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_available_workloads_are_the_papers_four_and_the_llms() -> None:
    assert available_workloads() == ["bert-base", "falcon-7b", "llama-3-8b-1m", "llama-3.1-70b", "llama-3.1-8b",
                                     "mistral-7b", "t5-small", "trxl-wt103", "xlm"]


@pytest.mark.parametrize("name", sorted(pd.MODELS))
def test_workloads_have_the_published_hyperparameters(name: str) -> None:
    expected = pd.MODELS[name]
    workload = load_workload(name)
    assert (workload.name, workload.batch, workload.d_model, workload.heads, workload.head_dim_e,
            workload.head_dim_f, workload.ffn) == (expected.name, expected.batch, expected.d_model,
                                                   expected.heads, expected.head_dim_e,
                                                   expected.head_dim_f, expected.ffn)
    assert workload.seq_lengths == tuple(1024 * 4**k for k in range(6)) == pd.SEQ_LENGTHS
    assert workload.origin == f"specs/workloads/{name}.yaml"
    assert set(workload.sources) == set(SOURCED_FIELDS)
    assert workload.source.strip()


def test_load_by_path_equals_load_by_name() -> None:
    by_path = load_workload(SPECS / "xlm.yaml")
    assert by_path == load_workload("xlm")
    assert by_path.origin == str(SPECS / "xlm.yaml")


@pytest.mark.parametrize("name", sorted(pd.MODELS))
@pytest.mark.parametrize("seq", [1024, 65536, 1048576])
def test_attention_macs(name: str, seq: int) -> None:
    """§5: attention MACs = 2*B*H*M*P*E (QK and AV, E = F)."""
    m = pd.MODELS[name]
    assert load_workload(name).attention_macs(seq) == 2 * m.batch * m.heads * seq * seq * m.head_dim_e


@pytest.mark.parametrize("name", sorted(pd.MODELS))
def test_linear_gemms_match_the_sheets_formula(name: str) -> None:
    """§5: linear MACs = B*P*(4*D*E*H + 2*D*S); §4.4: shapes of the projections and the FFN."""
    m = pd.MODELS[name]
    seq = 4096
    rows = m.batch * seq
    gemms = load_workload(name).linear_gemms(seq)
    assert gemms == [
        LinearGemm("qkv_projection", rows, m.heads * m.head_dim_e, m.d_model, 3),
        LinearGemm("output_projection", rows, m.d_model, m.heads * m.head_dim_f, 1),
        LinearGemm("ffn1", rows, m.ffn, m.d_model, 1),
        LinearGemm("ffn2", rows, m.d_model, m.ffn, 1),
    ]
    expected = rows * (4 * m.d_model * m.head_dim_e * m.heads + 2 * m.d_model * m.ffn)
    assert sum(g.m * g.n * g.k * g.count for g in gemms) == expected
    assert load_workload(name).linear_macs(seq) == expected


def test_bert_linear_latency_is_the_papers_at_ideal_utilisation() -> None:
    """§6.3: BERT's linear layers take 0.00753 s at 1K on 256 x 256 PEs at 940 MHz, fully used."""
    latency_s = BERT.linear_macs(1024) / (256 * 256) / 940e6
    assert pd.BERT_END_TO_END[1024]["linear_latency_s"].agrees(latency_s)


@pytest.mark.parametrize("seq", sorted(pd.ATTENTION_SHARE_BERT))
def test_fig1b_attention_share(seq: int) -> None:
    """§5 Fig. 1b: BERT's attention is about 18% of the MACs at 1K and about 99.6% at 1M."""
    attention = BERT.attention_macs(seq)
    share = attention / (attention + BERT.linear_macs(seq))
    assert pd.ATTENTION_SHARE_BERT[seq].agrees(share)


def test_unequal_head_widths_split_the_projections() -> None:
    data = yaml.safe_load((SPECS / "bert-base.yaml").read_text(encoding="utf-8"))
    workload = Workload.from_mapping({**data, "head_dim_f": 32})
    names = [g.name for g in workload.linear_gemms(1024)]
    assert names == ["qk_projection", "v_projection", "output_projection", "ffn1", "ffn2"]
    qk, v, out = workload.linear_gemms(1024)[:3]
    assert (qk.n, qk.count, v.n, v.count, out.k) == (768, 2, 12 * 32, 1, 12 * 32)
    assert workload.attention_macs(1024) == 64 * 12 * 1024 * 1024 * (64 + 32)


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 64), heads=st.integers(1, 32), e=st.integers(1, 256), f=st.integers(1, 256),
       seq=st.integers(1, 1 << 20))
def test_attention_macs_property(batch: int, heads: int, e: int, f: int, seq: int) -> None:
    data = yaml.safe_load((SPECS / "bert-base.yaml").read_text(encoding="utf-8"))
    workload = Workload.from_mapping({**data, "batch": batch, "heads": heads, "head_dim_e": e, "head_dim_f": f})
    assert workload.attention_macs(seq) == batch * heads * seq * seq * (e + f)
    assert all(g.m == batch * seq for g in workload.linear_gemms(seq))


# -- errors ------------------------------------------------------------------------------------------

def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "w.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _bert_with(tmp_path: Path, **changes: object) -> Path:
    data = yaml.safe_load((SPECS / "bert-base.yaml").read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    return _write(tmp_path, yaml.safe_dump(data, sort_keys=False))


def test_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(MappingError) as excinfo:
        load_workload("gpt-9")
    message = _one_line_error(excinfo)
    assert "unknown workload 'gpt-9'" in message and "bert-base" in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MappingError) as excinfo:
        load_workload(tmp_path / "nope.yaml")
    assert "no such workload file" in _one_line_error(excinfo)


@pytest.mark.parametrize("changes, expected", [
    ({"heads": 0}, "heads: expected a positive integer, got 0"),
    ({"batch": "64"}, "batch: expected a positive integer, got '64'"),
    ({"ffn": None}, "ffn: missing required key"),
    ({"colour": "blue"}, "colour: unknown key 'colour'"),
    ({"seq_lengths": [4096, 1024]}, "seq_lengths: expected strictly increasing sequence lengths"),
    ({"seq_lengths": []}, "seq_lengths: expected a non-empty list"),
    ({"seq_lengths": [1024, -4]}, "seq_lengths.1: expected a positive integer, got -4"),
    ({"seq_lengths": 1024}, "seq_lengths: expected a list, got 1024"),
    ({"sources": {"batch": "x"}}, "sources: missing the source of 'd_model'"),
    ({"source": ""}, "source: expected a non-empty string"),
])
def test_bad_fields_name_file_and_key(tmp_path: Path, changes: dict[str, object], expected: str) -> None:
    path = _bert_with(tmp_path, **changes)
    with pytest.raises(MappingError) as excinfo:
        load_workload(path)
    message = _one_line_error(excinfo)
    assert message.startswith(f"{path}: "), message
    assert expected in message, message


def test_unknown_source_key(tmp_path: Path) -> None:
    data = yaml.safe_load((SPECS / "bert-base.yaml").read_text(encoding="utf-8"))
    data["sources"]["colour"] = "made up"
    path = _write(tmp_path, yaml.safe_dump(data))
    with pytest.raises(MappingError) as excinfo:
        load_workload(path)
    assert "sources.colour: unknown key 'colour'" in _one_line_error(excinfo)


@pytest.mark.parametrize("text, expected", [
    ("name: [unclosed\n", "malformed YAML"),
    ("- just\n- a list\n", "expected a mapping of keys at the top level"),
    ("name: a\nname: b\n", "duplicate key 'name'"),
])
def test_malformed_files(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(MappingError) as excinfo:
        load_workload(path)
    message = _one_line_error(excinfo)
    assert str(path) in message and expected in message, message


@pytest.mark.parametrize("seq", [0, -1024, 1024.0, "1024", True, None])
def test_bad_sequence_length(seq: object) -> None:
    for method in (BERT.attention_macs, BERT.linear_gemms, BERT.linear_macs):
        with pytest.raises(MappingError) as excinfo:
            method(seq)  # type: ignore[arg-type]
        message = _one_line_error(excinfo)
        assert message.startswith("specs/workloads/bert-base.yaml: seq: expected a positive integer"), message


def test_mapping_error_is_a_value_error_and_folds_lines() -> None:
    error = MappingError("first\nsecond")
    assert isinstance(error, ValueError)
    assert str(error) == "first second"
