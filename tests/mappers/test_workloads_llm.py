"""Decoder-LLM workloads: GQA/MQA, causal masks, sliding windows, phases, gated FFNs (issue #15, part 1).

Expected values come from the models' public configurations and published parameter counts, written
here, and from brute-force counts independent of the closed forms in ``mappers.workloads``.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnsim.mappers.errors import MappingError
from attnsim.mappers.workloads import AttentionShape, Workload, load_workload

PUBLIC_CONFIGS = {
    # name: (hidden_size, num_attention_heads, num_key_value_heads, intermediate_size, num_hidden_layers)
    "llama-3.1-8b": (4096, 32, 8, 14336, 32),      # huggingface.co/meta-llama/Llama-3.1-8B config.json
    "llama-3.1-70b": (8192, 64, 8, 28672, 80),     # huggingface.co/meta-llama/Llama-3.1-70B config.json
    "mistral-7b": (4096, 32, 8, 14336, 32),        # Mistral 7B paper (arXiv 2310.06825) Table 1
    "falcon-7b": (4544, 71, 1, 18176, 32),         # huggingface.co/tiiuae/falcon-7b config.json
    "llama-3-8b-1m": (4096, 32, 8, 14336, 32),     # gradientai/Llama-3-8B-Instruct-Gradient-1048k
}


@pytest.mark.parametrize("name", sorted(PUBLIC_CONFIGS))
def test_llm_workloads_carry_the_public_configuration(name: str) -> None:
    d_model, heads, kv_heads, ffn, layers = PUBLIC_CONFIGS[name]
    w = load_workload(name)
    assert (w.d_model, w.heads, w.key_value_heads, w.ffn, w.layers) == (d_model, heads, kv_heads, ffn, layers)
    assert w.head_dim_e * w.heads == d_model and w.causal


def test_llama_8b_layer_weights_add_up_to_the_published_parameter_count() -> None:
    # Llama 3.1 8B has 8,030,261,248 parameters (Hugging Face model page); embeddings and the LM head
    # are 2 x 128256 x 4096, the RMSNorm weights 2 per layer plus the final one, 4096 each.
    w = load_workload("llama-3.1-8b")
    one_row = w.linear_gemms(w.seq_lengths[0])
    rows = one_row[0].m
    per_layer = sum(g.n * g.k * g.count for g in one_row)
    norms = (2 * w.layers + 1) * w.d_model
    assert per_layer * w.layers + 2 * 128256 * w.d_model + norms == 8_030_261_248
    assert rows == w.batch * w.seq_lengths[0]


def test_decode_reads_one_row_per_sequence_and_the_whole_cache() -> None:
    w = load_workload("llama-3.1-8b").model_copy(update={"phase": "decode", "batch": 1})
    shape = w.attention_shape(131072)
    assert (shape.q_len, shape.kv_len, shape.group_size) == (1, 131072, 4)
    assert all(g.m == 1 for g in w.linear_gemms(131072))
    # 128K tokens of fp16 KV cache for Llama 3.1 8B: 32 layers x 8 heads x (128 + 128) x 2 B = 128 KiB
    # per token, 16 GiB in all (the figure commonly quoted for the model's full context).
    assert w.kv_cache_bytes(131072) == 16 * 2**30


def test_encoders_are_unchanged_by_the_new_fields() -> None:
    w = load_workload("bert-base")
    assert (w.key_value_heads, w.layers, w.causal, w.phase, w.ffn_kind) == (12, 1, False, "prefill", "mlp")
    assert w.attention_macs(1024) == 64 * 12 * 1024 * 1024 * (64 + 64)
    assert [g.name for g in w.linear_gemms(1024)] == ["qkv_projection", "output_projection", "ffn1", "ffn2"]


def _brute_force_pairs(q_len: int, kv_len: int, causal: bool, window: int | None) -> int:
    q_pos = np.arange(kv_len - q_len, kv_len)[:, None]
    k_pos = np.arange(kv_len)[None, :]
    keep = np.ones((q_len, kv_len), dtype=bool)
    if causal:
        keep &= k_pos <= q_pos
    if window is not None:
        visible = np.minimum(q_pos, kv_len - 1) if causal else np.full_like(q_pos, kv_len - 1)
        keep &= k_pos > visible - window
    return int(keep.sum())


@settings(max_examples=200, deadline=None)
@given(kv_len=st.integers(1, 300), data=st.data(), causal=st.booleans(),
       window=st.one_of(st.none(), st.integers(1, 320)))
def test_attended_pairs_equal_a_brute_force_count(kv_len: int, data, causal: bool,  # type: ignore[no-untyped-def]
                                                  window: int | None) -> None:
    q_len = data.draw(st.integers(1, kv_len))
    shape = AttentionShape(1, 1, 1, q_len, kv_len, 64, 64, causal, window)
    assert shape.attended_pairs() == _brute_force_pairs(q_len, kv_len, causal, window)


def test_causal_prefill_does_about_half_the_work() -> None:
    # Causal prefill of n tokens attends n (n + 1) / 2 pairs per head: (n + 1) / (2 n) of the dense n^2.
    w = load_workload("llama-3.1-8b")
    dense = w.model_copy(update={"causal": False})
    n = 65536
    assert w.attention_macs(n) / dense.attention_macs(n) == pytest.approx((n + 1) / (2 * n), rel=1e-15)


def test_sliding_window_caps_the_keys_per_query() -> None:
    w = load_workload("mistral-7b")
    pairs = w.attention_shape(32768).attended_pairs()
    # first 4096 queries see 1..4096 keys, the remaining 28672 see 4096 each
    assert pairs == 4096 * 4097 // 2 + (32768 - 4096) * 4096


def _document(**changes) -> dict:  # type: ignore[no-untyped-def]
    base = load_workload("llama-3.1-8b").model_dump(mode="json", exclude_unset=True)
    base.update(changes)
    return base


@pytest.mark.parametrize(("changes", "message"), [
    ({"kv_heads": 5}, "kv_heads: expected a divisor of heads = 32"),
    ({"phase": "chunked-prefill"}, "chunk_size: missing: phase 'chunked-prefill' needs the chunk size"),
    ({"chunk_size": 512}, "chunk_size: only meaningful with phase 'chunked-prefill'"),
    ({"phase": "generate"}, "phase: expected 'prefill', 'decode' or 'chunked-prefill'"),
    ({"sliding_window": 0}, "sliding_window:"),
])
def test_bad_llm_fields_are_refused_in_one_line(changes: dict, message: str) -> None:
    data = _document(**changes)
    if "chunk_size" in changes or changes.get("phase") == "chunked-prefill":
        data["sources"] = {**data["sources"], "phase": "test", "chunk_size": "test"}
    with pytest.raises(MappingError) as info:
        Workload.from_mapping(data, origin="x.yaml")
    text = str(info.value)
    assert "\n" not in text and text.startswith("x.yaml: ") and message in text


def test_a_set_optional_field_needs_its_source() -> None:
    data = _document()
    data["sources"] = {k: v for k, v in data["sources"].items() if k != "kv_heads"}
    with pytest.raises(MappingError, match="missing the source of 'kv_heads'"):
        Workload.from_mapping(data, origin="x.yaml")


def test_chunked_prefill_queries_a_chunk_of_the_context() -> None:
    data = _document(phase="chunked-prefill", chunk_size=512)
    data["sources"] = {**data["sources"], "phase": "test", "chunk_size": "test"}
    w = Workload.from_mapping(data, origin="x.yaml")
    shape = w.attention_shape(8192)
    assert (shape.q_len, shape.kv_len) == (512, 8192)
    # the chunk's 512 queries are the last positions of 8192: they see 7681 .. 8192 keys
    assert shape.attended_pairs() == (7681 + 8192) * 512 // 2


@pytest.mark.parametrize("name", sorted(PUBLIC_CONFIGS))
def test_spatial_designs_run_the_causal_cascade_and_refuse_what_they_would_silently_drop(name: str) -> None:
    # A causal decoder workload in prefill runs the design's causal cascade (the mask is a cascade file);
    # a sliding window shorter than the length runs the design's window cascade (W the workload's), and a
    # cascade without a window is refused rather than the window dropped.
    from attnsim.studies.simulate import simulate

    window = load_workload(name).sliding_window
    if window is not None:
        report = simulate("fusemax", name, 2 * window)
        assert report["cascade"] == "window-attention" and report["choices"]["sizes"]["W"] == window
        with pytest.raises(MappingError) as info:
            simulate(None, name, 2 * window, cascade="attention-1pass-causal", mapping="fusemax")
        text = str(info.value)
        assert "\n" not in text and "sliding_window" in text and "no window size W" in text
    else:
        report = simulate("fusemax", name, 1024)
        assert report["cascade"] == "attention-1pass-causal" and report["causal"] and report["q_len"] == 1024


@pytest.mark.parametrize("q_len", [0, -1, 8193, True, 2.5, "512"])
def test_a_query_length_outside_the_context_is_refused(q_len: object) -> None:
    # the queries are the last q_len positions of the kv_len = 8192 context: 1 <= q_len <= 8192, an int
    w = load_workload("llama-3.1-8b")
    assert w.attention_shape(8192, q_len=8192).q_len == 8192 and w.attention_shape(8192, q_len=1).q_len == 1
    with pytest.raises(MappingError, match="q_len: expected a positive integer of at most the KV length 8192"):
        w.attention_shape(8192, q_len=q_len)  # type: ignore[arg-type]


def test_only_a_phase_other_than_prefill_is_a_decoder_feature() -> None:
    # an encoder (bert-base: MHA, no mask, prefill) asks nothing beyond the paper's attention; the same
    # model decoding, or prefilling in chunks, names its phase
    bert = load_workload("bert-base")
    assert bert.decoder_features() == []
    bert.require_encoder_attention("fusemax")            # no error
    for phase in ("decode", "chunked-prefill"):
        assert bert.model_copy(update={"phase": phase}).decoder_features() == [f"phase = {phase}"]
