"""Sliding-window attention on the GPU (issue #16): ``attnsim gpu --cascade window-attention --mapping
gpu-fa2-style|gpu-fa3-style --window W`` visits only the K/V tiles that meet each query block's window.

Independent references, written here: the (query block, K/V tile) pairs that meet the band
p - W < m <= p by a closed form per block and by brute force over tile corners; the pairs that are
only partly inside (masked) by a dense numpy mask; the attended (query, key) pairs by a dense numpy
mask. Then the latency: equal to the causal kernel's when the window covers the sequence, below it
otherwise, and a constant cost per added token once the length is past the window.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from attnsim.archsim.gpu_spec import load_gpu
from attnsim.mappers.errors import MappingError
from attnsim.mappers.gpu_common import GpuAttention
from attnsim.studies.cli import main as cli_main
from attnsim.studies.gpu import build_gpu_mapping, predict_cascade

H100 = load_gpu("h100-sxm")


def band_tiles(seq: int, window: int, block_m: int, block_n: int) -> int:
    """Pairs per head: query block i (rows i Bm .. i Bm + Bm - 1) reaches the K/V tiles from the one
    holding key max(0, i Bm - W + 1) to the one holding key i Bm + Bm - 1."""
    blocks = -(-seq // block_m)
    return sum(min(seq - 1, i * block_m + block_m - 1) // block_n - max(0, i * block_m - window + 1) // block_n + 1
               for i in range(blocks))


def dense_mask(seq: int, window: int) -> np.ndarray:
    p, m = np.meshgrid(np.arange(seq), np.arange(seq), indexing="ij")
    return (m <= p) & (m > p - window)


def tile_counts_brute(seq: int, window: int, block_m: int, block_n: int) -> tuple[int, int]:
    """(tiles with a key in the band, of those the ones not wholly inside it), from the dense mask."""
    mask = dense_mask(seq, window)
    visited = masked = 0
    for i in range(0, seq, block_m):
        for j in range(0, seq, block_n):
            box = mask[i:i + block_m, j:j + block_n]
            if box.any():
                visited += 1
                masked += int(not box.all())
    return visited, masked


def _mapping(seq: int, window: int | None, head_dim: int = 128, mapping: str = "gpu-fa2-style",
             cascade: str = "window-attention"):  # type: ignore[no-untyped-def]
    workload = GpuAttention(batch=1, heads=2, seq=seq, head_dim=head_dim, causal=True, window=window)
    return build_gpu_mapping(H100, cascade, mapping, workload)


@pytest.mark.parametrize(("seq", "window"), [(2048, 512), (4096, 1000), (1536, 4096), (3000, 640)])
def test_visited_and_masked_tiles_follow_the_band(seq: int, window: int) -> None:
    mapped = _mapping(seq, window)
    block_m, block_n = mapped.tile.block_m, mapped.tile.block_n
    assert (block_m, block_n) == (128, 64)         # FA2 at head dim 128 (gpu-fa2-style.yaml)
    visited, masked = tile_counts_brute(seq, window, block_m, block_n)
    assert visited == band_tiles(seq, window, block_m, block_n)
    heads = 2
    assert sum(w.tiles for w in mapped.order) == heads * visited
    assert sum(w.masked for w in mapped.order) == heads * masked


@pytest.mark.parametrize(("seq", "window"), [(2048, 512), (3000, 640), (1000, 4096)])
def test_attended_pairs_equal_the_dense_mask(seq: int, window: int) -> None:
    workload = GpuAttention(batch=1, heads=1, seq=seq, head_dim=128, causal=True, window=window)
    dense = int(dense_mask(seq, window).sum())
    if window >= seq:   # FA3's convention for a causal square: seq^2 / 2
        assert workload.attended_pairs == seq * seq / 2
    else:
        assert workload.attended_pairs == dense


@pytest.mark.parametrize("mapping", ["gpu-fa2-style", "gpu-fa3-style"])
def test_a_window_covering_the_sequence_is_the_causal_kernel(mapping: str) -> None:
    seq = 4096
    workload = GpuAttention(batch=4, heads=16, seq=seq, head_dim=128, causal=True)
    causal = predict_cascade(H100, "attention-1pass-causal", mapping, workload)
    whole = predict_cascade(H100, "window-attention", mapping,
                            GpuAttention(batch=4, heads=16, seq=seq, head_dim=128, causal=True, window=seq))
    narrow = predict_cascade(H100, "window-attention", mapping,
                             GpuAttention(batch=4, heads=16, seq=seq, head_dim=128, causal=True, window=1024))
    # the two cascades differ only in the -1e30 start of the running max (same work): equal latency
    assert whole.latency_s == causal.latency_s
    # a window of a quarter of the sequence: below the causal kernel, and not under the tensor cores'
    # time for the visited tiles' two GEMMs (4 Bm Bn d FLOPs per tile, whole tiles, the spec's dense
    # FP16 peak x its mma.sync fraction over all SMs; FA3 at its wgmma fraction)
    block_m, block_n = (128, 64) if mapping == "gpu-fa2-style" else (128, 128)
    assert build_gpu_mapping(H100, "window-attention", mapping, GpuAttention(
        batch=4, heads=16, seq=seq, head_dim=128, causal=True, window=1024)).tile.block_n == block_n
    fraction = "mma_sync_tensor_fraction" if mapping == "gpu-fa2-style" else "wgmma_tensor_fraction"
    rate = H100.sms * H100.tensor_flops_per_cycle("fp16") * H100.clock_hz * H100.calibration_value(fraction)
    tensor_s = 4 * 16 * band_tiles(seq, 1024, block_m, block_n) * 4 * block_m * block_n * 128 / rate
    assert tensor_s < narrow.latency_s < causal.latency_s


@pytest.mark.parametrize("mapping", ["gpu-fa2-style", "gpu-fa3-style"])
def test_cost_per_token_is_constant_past_the_window(mapping: str) -> None:
    window, seqs = 4096, (32768, 65536, 131072)
    latency = [predict_cascade(H100, "window-attention", mapping,
                               GpuAttention(batch=1, heads=16, seq=s, head_dim=128, causal=True, window=window)
                               ).latency_s for s in seqs]
    marginal = [(latency[k + 1] - latency[k]) / (seqs[k + 1] - seqs[k]) for k in range(2)]
    # each added query block visits window / block_n + block_m / block_n tiles: the cost per added token
    # is the same from 32K to 64K as from 64K to 128K (achieved 0.12% apart (FA2) and 0.008% (FA3), the
    # CTAs' last wave; margin 0.4%), where causal attention's would double
    assert abs(marginal[1] / marginal[0] - 1) < 0.005


def test_bad_window_requests_are_one_line(capsys) -> None:  # type: ignore[no-untyped-def]
    base = ["gpu", "--seq", "4K", "--head-dim", "128", "--mapping", "gpu-fa2-style"]
    cases = [(["--cascade", "window-attention"], "--window W"),
             (["--cascade", "attention-1pass", "--window", "1024"], "no shape symbol bound to window"),
             (["--cascade", "window-attention", "--window", "0"], "--window")]
    for extra, needle in cases:
        assert cli_main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, err
    with pytest.raises(MappingError, match="causal=True"):
        GpuAttention(batch=1, heads=1, seq=128, head_dim=128, window=64)


def test_the_cli_reports_the_window(capsys) -> None:  # type: ignore[no-untyped-def]
    assert cli_main(["gpu", "--cascade", "window-attention", "--mapping", "gpu-fa2-style", "--seq", "8K",
                     "--head-dim", "128", "--window", "2048", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["window"] == 2048 and report["causal"] is True
    pairs = int(dense_mask(8192, 2048).sum())
    assert report["flops"] == 4 * pairs * 128 * report["heads"] * report["batch"]
