"""The FuseMax paper's published numbers, for tests (fact sheet §5, §6.1, §6.3, §2.5, §4.4, §4.5).

Values are kept as the text the sheet prints, so that a test can compare "to the printed precision":
:meth:`Printed.agrees` accepts a value within half a unit of the last printed digit (plus an optional
relative allowance for numbers the sheet itself says it reproduces only approximately).

Only BERT's per-point tables are printed in the sheet; TrXL, T5 and XLM per-point values are held out
(fact sheet §6.3). The §6.1 headline numbers are means over all 4 models x 6 sequence lengths.

Designs: ``unfused``, ``flat``, ``cascade`` (+Cascade), ``arch`` (+Architecture), ``fusemax``
(+Binding, the full design).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Printed:
    """A number as printed: ``text`` such as ``"0.02182"``, ``"1.057e+04"`` or ``"1370"``."""

    text: str

    @property
    def value(self) -> float:
        """The printed number."""
        return float(self.text)

    @property
    def half_unit(self) -> float:
        """Half the place value of the last printed digit (``"0.02182"`` -> 5e-6, ``"1370"`` -> 0.5)."""
        exponent = Decimal(self.text).as_tuple().exponent
        assert isinstance(exponent, int)
        return 0.5 * 10.0 ** exponent

    def agrees(self, value: float, rel: float = 0.0) -> bool:
        """``value`` rounds to the printed text, allowing ``rel`` (relative to the printed value) more."""
        return abs(value - self.value) <= self.half_unit * (1 + 1e-9) + rel * abs(self.value)

    def __repr__(self) -> str:
        return f"Printed({self.text!r})"


def _p(text: str) -> Printed:
    return Printed(text)


SEQ_LENGTHS: tuple[int, ...] = (1024, 4096, 16384, 65536, 262144, 1048576)
"""The plotted sequence lengths, M = P = 1K ... 1M (fact sheet §5)."""

DESIGNS: tuple[str, ...] = ("unfused", "flat", "cascade", "arch", "fusemax")


# --------------------------------------------------------------------------------------------------
# §5 workloads (the published hyper-parameters; XLM from §2.5/§5 and the brief: xlm-mlm-en-2048).


@dataclass(frozen=True)
class Model:
    """Published hyper-parameters of one evaluated model (element counts)."""

    name: str
    batch: int
    d_model: int
    heads: int
    head_dim_e: int
    head_dim_f: int
    ffn: int


MODELS: dict[str, Model] = {
    "bert-base": Model("bert-base", 64, 768, 12, 64, 64, 3072),
    "trxl-wt103": Model("trxl-wt103", 64, 1024, 16, 64, 64, 4096),
    "t5-small": Model("t5-small", 64, 512, 8, 64, 64, 2048),
    "xlm": Model("xlm", 64, 2048, 16, 128, 128, 8192),
}
"""Fact sheet §5 table (B, D, E = F, H, S); XLM: E = F = 128 (§2.5), D = 2048, H = 16, S = 8192."""


# --------------------------------------------------------------------------------------------------
# §6.3 "Attention per point" (BERT): latency in s, energy in J.

BERT_ATTENTION: dict[int, dict[str, Printed]] = {
    seq: dict(zip(("unfused_latency_s", "flat_latency_s", "cascade_latency_s", "arch_latency_s",
                   "fusemax_latency_s", "unfused_energy_j", "flat_energy_j", "fusemax_energy_j",
                   "fusemax_speedup_over_flat", "fusemax_energy_ratio_to_flat"), map(_p, row)))
    for seq, row in {
        1024: ("0.02182", "0.01339", "0.01533", "0.005987", "0.002013",
               "2.605", "2.485", "1.951", "6.65", "0.785"),
        4096: ("0.3379", "0.2142", "0.2428", "0.09579", "0.0297",
               "41.4", "39.77", "30.9", "7.21", "0.777"),
        16384: ("5.362", "3.427", "3.875", "1.533", "0.4652",
                "661.2", "636.1", "493.1", "7.37", "0.775"),
        65536: ("85.61", "54.83", "61.96", "24.52", "7.403",
                "1.057e+04", "1.048e+04", "7886", "7.41", "0.752"),
        262144: ("1370", "1014", "991.3", "392.4", "118.3",
                 "1.692e+05", "1.671e+05", "1.266e+05", "8.57", "0.757"),
        1048576: ("2.19e+04", "1.622e+04", "1.586e+04", "6278", "1892",
                  "2.785e+06", "2.753e+06", "2.029e+06", "8.57", "0.737"),
    }.items()
}


# --------------------------------------------------------------------------------------------------
# §6.3 "End-to-end per point" (BERT): linear-layer latency (s) and energies (J), end-to-end ratios.

BERT_END_TO_END: dict[int, dict[str, Printed]] = {
    seq: dict(zip(("linear_latency_s", "linear_energy_flat_platform_j",
                   "linear_energy_fusemax_platform_j", "speedup_fusemax_over_flat",
                   "energy_ratio_fusemax_to_flat", "speedup_fusemax_over_unfused",
                   "energy_ratio_fusemax_to_unfused"), map(_p, row)))
    for seq, row in {
        1024: ("0.00753", "8.405", "8.224", "2.19", "0.934", "3.08", "0.924"),
        4096: ("0.03012", "33.62", "32.89", "4.08", "0.869", "6.15", "0.850"),
        16384: ("0.1205", "134.5", "131.6", "6.06", "0.811", "9.36", "0.785"),
        65536: ("0.4819", "537.9", "526.3", "7.02", "0.763", "10.92", "0.757"),
        262144: ("1.928", "2151", "2105", "8.45", "0.760", "11.41", "0.751"),
        1048576: ("7.71", "8606", "8421", "8.54", "0.738", "11.54", "0.729"),
    }.items()
}


# --------------------------------------------------------------------------------------------------
# §6.3 "Utilisation per point" (BERT), U/FL/+C/+A/FM, and FuseMax's per-Einsum 2D shares (Fig. 7).

def _by_design(texts: str) -> dict[str, Printed]:
    return dict(zip(DESIGNS, map(_p, texts.split("/"))))


BERT_UTIL_2D: dict[int, dict[str, Printed]] = {
    1024: _by_design("0.077/0.125/0.109/0.299/0.890"),
    4096: _by_design("0.079/0.125/0.110/0.299/0.965"),
    16384: _by_design("0.080/0.125/0.111/0.299/0.986"),
    65536: _by_design("0.080/0.125/0.111/0.299/0.991"),
    262144: _by_design("0.080/0.108/0.111/0.299/0.992"),
    1048576: _by_design("0.080/0.108/0.111/0.299/0.993"),
}

BERT_UTIL_1D: dict[int, dict[str, Printed]] = {
    1024: _by_design("0.613/1.000/1.000/0.336/1.000"),
    4096: _by_design("0.634/1.000/1.000/0.310/1.000"),
    16384: _by_design("0.639/1.000/1.000/0.303/1.000"),
    65536: _by_design("0.640/1.000/1.000/0.302/1.000"),
    262144: _by_design("0.640/0.865/1.000/0.301/1.000"),
    1048576: _by_design("0.641/0.865/1.000/0.301/1.000"),
}

FIG7_EINSUMS: tuple[str, ...] = ("QK", "LM", "SLN", "SLD", "SLNV")

BERT_FUSEMAX_EINSUM_2D_SHARE: dict[int, dict[str, Printed]] = {
    seq: dict(zip(FIG7_EINSUMS, map(_p, row.split(","))))
    for seq, row in {
        1024: "0.4156,0.0065,0.0455,0.0065,0.4156",
        4096: "0.4507,0.0070,0.0493,0.0070,0.4507",
        16384: "0.4604,0.0072,0.0504,0.0072,0.4604",
        65536: "0.4629,0.0072,0.0506,0.0072,0.4629",
        262144: "0.4636,0.0072,0.0507,0.0072,0.4636",
        1048576: "0.4637,0.0072,0.0507,0.0072,0.4637",
    }.items()
}


# --------------------------------------------------------------------------------------------------
# §6.1 headline numbers: paper claim and the sheet's recomputation from the artifact's CSVs
# (arithmetic mean over 4 models x 6 sequence lengths unless said otherwise).


@dataclass(frozen=True)
class Headline:
    """One headline claim: the paper's number, the sheet's recomputation, and what it means."""

    paper: Printed | None
    recomputed: Printed
    meaning: str


HEADLINES: dict[str, Headline] = {
    "attention_speedup_vs_flat": Headline(_p("6.7"), _p("6.72"), "mean FLAT/FuseMax attention latency"),
    "attention_speedup_vs_flat_geomean": Headline(None, _p("6.46"), "geometric mean of the same"),
    "attention_speedup_vs_unfused": Headline(_p("10"), _p("10.05"), "mean Unfused/FuseMax attention latency"),
    "attention_energy_vs_flat": Headline(_p("0.79"), _p("0.787"), "mean FuseMax/FLAT attention energy"),
    "attention_energy_vs_unfused": Headline(_p("0.77"), _p("0.767"), "mean FuseMax/Unfused attention energy"),
    "end_to_end_speedup_vs_flat": Headline(_p("5.3"), _p("5.30"), "mean end-to-end FLAT/FuseMax latency"),
    "end_to_end_speedup_vs_flat_geomean": Headline(None, _p("4.60"), "geometric mean of the same"),
    "end_to_end_speedup_vs_unfused": Headline(_p("7.6"), _p("7.60"), "mean end-to-end Unfused/FuseMax latency"),
    "end_to_end_speedup_vs_unfused_at_1m": Headline(_p("10"), _p("10.14"), "mean over the 4 models at 1M"),
    "end_to_end_speedup_vs_flat_at_1m": Headline(_p("7.5"), _p("7.54"), "mean over the 4 models at 1M"),
    "end_to_end_energy_vs_flat": Headline(_p("0.83"), _p("0.833"), "mean end-to-end FuseMax/FLAT energy"),
    "end_to_end_energy_vs_unfused": Headline(_p("0.82"), _p("0.821"), "mean end-to-end FuseMax/Unfused energy"),
    "flat_attention_speedup_vs_unfused": Headline(None, _p("1.51"), "mean Unfused/FLAT attention latency"),
    "flat_attention_speedup_vs_unfused_at_1k": Headline(None, _p("1.63"), "Unfused/FLAT at 1K"),
    "flat_attention_speedup_vs_unfused_at_256k_up": Headline(None, _p("1.35"), "Unfused/FLAT at >= 256K"),
    "area_ratio_fusemax_to_flat": Headline(None, _p("0.936"), "FuseMax area / FLAT area (6.4% smaller)"),
}

FUSEMAX_2D_MAC_ENERGY_SHARE_RANGE: tuple[Printed, Printed] = (_p("0.950"), _p("0.965"))
"""§6.1: FuseMax energy in 2D MACs (QK + SLNV + 6 SLN MACs at 17.1645 pJ) is 95.0-96.5% of the total."""


# --------------------------------------------------------------------------------------------------
# Other quoted numbers.

FLAT_BERT_1K_TRAFFIC_BYTES = _p("1.30862e9")
"""§4.5: DRAM traffic of the artifact's Timeloop FLAT model for BERT at 1K (FLAT's own code: 1.30879e9)."""

FLAT_OWN_BERT_1K_TRAFFIC_BYTES = _p("1.30879e9")
"""§4.5: the same point in FLAT's own code."""

FUSEMAX_P2 = {64: (1, 1, 1, 2, 8, 32), 128: (1, 1, 1, 4, 16, 64)}
"""§2.5: FuseMax's P2 for 1K ... 1M at 16 MB, by head width E = F."""

FUSEMAX_P1_RAW_BOUND = {64: 251, 128: 126}
"""§2.5: the raw capacity bound on P1 at 16 MB (before taking a divisor), by head width E = F."""

CASCADE_P2_E64 = (1, 1, 2, 8, 32, 128)
"""§4.4: +Cascade's P2 for 1K ... 1M (E = F = 64), from per-query GLB bytes (E + F + 514) * 2, P1 <= 50."""

ATTENTION_SHARE_BERT = {1024: _p("0.18"), 1048576: _p("0.996")}
"""§5 "Fig. 1b [derived]": BERT's attention share of MACs, about 18% at 1K and about 99.6% at 1M."""

ENERGY_ACCURACY = {
    "fusemax_upto_64k_rel": 0.0002, "fusemax_256k_up_rel": 0.0055,
    "flat_upto_16k_rel": 0.0002, "flat_elsewhere_rel": 0.04,
}
"""§6.4: how closely the sheet's energy formulas reproduce the artifact's CSVs (relative)."""

LATENCY_ACCURACY = {"unfused_256k_up_rel": 0.004}
"""§4.4: the Unfused closed form is exact at <= 64K and within 0.4% at 256K/1M."""
