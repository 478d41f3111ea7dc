"""Loading, validating and overriding hardware specs (archsim.spec).

Expected values are the FuseMax fact sheet's (§3.1-3.3, §8), written here by hand.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnsim.archsim import Arch, SpecError, load_arch
from attnsim.archsim.spec import parse_override, parse_overrides

SPECS = Path(__file__).resolve().parents[2] / "specs" / "arch"
FUSEMAX_TEXT = (SPECS / "fusemax-cloud.yaml").read_text(encoding="utf-8")
FUSEMAX = load_arch("fusemax-cloud")

# name -> (2D rows, 2D cols, 1D PEs, GLB bytes, DRAM B/s, 2D RF entries, 1D RF entries, 2D ops, 1D ops)
PAPER_PARAMETERS = {
    "fusemax-cloud": (256, 256, 256, 16 * 2**20, 400 * 2**30, 12, 32,
                      {"mac": 1, "add": 1, "max": 1, "exp": 7, "log": 7},   # log as exp: 6 MAC + 1 add (#16)
                      {"mac": 1, "add": 1, "max": 1, "div": 1, "exp": 7, "log": 7}),
    "flat-cloud": (256, 256, 256, 32 * 2**20, 400 * 2**30, 4, 16,
                   {"mac": 1, "add": 1},
                   {"mac": 1, "add": 1, "max": 1, "div": 1, "exp": 1}),
    "flat-edge": (32, 32, 32, 512 * 2**10, 50 * 2**30, 4, 16,
                  {"mac": 1, "add": 1},
                  {"mac": 1, "add": 1, "max": 1, "div": 1, "exp": 1}),
}


@pytest.mark.parametrize("name", sorted(PAPER_PARAMETERS))
def test_specs_load_with_the_papers_parameters(name: str) -> None:
    rows, cols, size, glb_bytes, dram_bw, rf2d, rf1d, ops2d, ops1d = PAPER_PARAMETERS[name]
    arch = load_arch(name)
    assert arch.name == name
    assert (arch.arrays.pe2d.rows, arch.arrays.pe2d.cols, arch.arrays.pe1d.size) == (rows, cols, size)
    assert arch.global_buffer.capacity_bytes == glb_bytes
    assert arch.global_buffer.row_bytes == 4096 // 8
    assert arch.dram.bandwidth_bytes_per_s == dram_bw
    assert arch.dram.access_bytes == 8
    assert arch.clock_hz == 940e6
    assert arch.word_bytes == 2
    # the register files are energy/area entries; the sizes the paper gives are in those sources
    for array, entries in (("pe2d", rf2d), ("pe1d", rf1d)):
        assert f"pe{array[2:]}.register_file" in arch.area
    assert arch.arrays.pe2d.ops.as_dict() == ops2d
    assert arch.arrays.pe1d.ops.as_dict() == ops1d
    assert arch.origin == f"specs/arch/{name}.yaml"


def test_load_by_path_equals_load_by_name() -> None:
    by_path = load_arch(SPECS / "flat-cloud.yaml")
    assert by_path == load_arch("flat-cloud")  # equal content, although read from different origins
    assert hash(by_path) == hash(load_arch("flat-cloud"))
    assert by_path != FUSEMAX
    assert by_path.origin == str(SPECS / "flat-cloud.yaml")


def test_derived_properties() -> None:
    assert FUSEMAX.pes_2d == 65536
    assert FUSEMAX.pes_1d == 256
    assert FUSEMAX.words_per_row == 256  # sheet §3.7.3: "L3 counts are divided by 256 words per row"
    assert FUSEMAX.dram_bytes_per_cycle == pytest.approx(400 * 2**30 / 940e6, rel=1e-12)
    # sheet §3.3: ~214.7 words per cycle at 1e9 cycles/s -> x 1e9/940e6 at 940 MHz
    assert FUSEMAX.dram_bytes_per_cycle / 2 == pytest.approx(214.7 * 1e9 / 940e6, rel=1e-3)
    assert FUSEMAX.cycle_s == pytest.approx(1.0638297873e-9, rel=1e-9)


def test_ops_read_like_a_mapping() -> None:
    ops = FUSEMAX.arrays.pe2d.ops
    assert ops["exp"] == ops.exp == 7
    assert "max" in ops and "div" not in ops
    assert ops.get("div") is None and ops.get("div", 0) == 0
    assert ops.keys() == ["mac", "add", "max", "exp", "log"]
    with pytest.raises(KeyError):
        ops["div"]


def test_arch_is_frozen() -> None:
    with pytest.raises(ValueError):
        FUSEMAX.clock_hz = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        FUSEMAX.arrays.pe2d.rows = 3  # type: ignore[misc]


# ---------------------------------------------------------------------------------------- overrides


@pytest.mark.parametrize(("key", "value", "read_back"), [
    ("arrays.pe2d.rows", 32, lambda a: a.arrays.pe2d.rows),
    ("arrays.pe2d.cols", 32, lambda a: a.arrays.pe2d.cols),
    ("arrays.pe1d.size", 32, lambda a: a.arrays.pe1d.size),
    ("global_buffer.capacity_bytes", 1048576, lambda a: a.global_buffer.capacity_bytes),
    ("arrays.pe2d.ops.exp", 2, lambda a: a.arrays.pe2d.ops["exp"]),
    ("dram.bandwidth_bytes_per_s", 50 * 2**30, lambda a: a.dram.bandwidth_bytes_per_s),
    ("energy.global_buffer.read.pj", 1000.5, lambda a: a.energy["global_buffer.read"].pj),
    ("area.pe2d.register_file.um2", 123.0, lambda a: a.area["pe2d.register_file"].um2),
])
def test_override_sets_value_and_leaves_original(key: str, value: object, read_back) -> None:  # type: ignore[no-untyped-def]
    changed = FUSEMAX.with_overrides({key: value})
    assert read_back(changed) == value
    assert read_back(FUSEMAX) != value
    assert load_arch("fusemax-cloud", {key: value}) == changed
    assert changed.origin == FUSEMAX.origin


def test_overrides_apply_together_and_rescale_derived() -> None:
    small = FUSEMAX.with_overrides({"arrays.pe2d.rows": 32, "arrays.pe2d.cols": 16,
                                    "arrays.pe1d.size": 16})
    assert small.pes_2d == 32 * 16
    assert small.pes_1d == 16


def test_override_can_add_an_op_with_its_energy_entry() -> None:
    entry = {"pj": 36.251153, "per": "op", "source": "test: the 1D divider's energy"}
    arch = FUSEMAX.with_overrides({"arrays.pe2d.ops.div": 3, "energy.pe2d.div": entry})
    assert arch.arrays.pe2d.ops["div"] == 3
    assert arch.energy["pe2d.div"].pj == 36.251153


def test_empty_overrides_return_the_same_arch() -> None:
    assert FUSEMAX.with_overrides({}) is FUSEMAX
    assert FUSEMAX.with_overrides(None) is FUSEMAX


@settings(max_examples=40, deadline=None)
@given(key=st.sampled_from(["arrays.pe2d.rows", "arrays.pe2d.cols", "arrays.pe1d.size",
                            "arrays.pe2d.ops.exp", "arrays.pe1d.ops.div"]),
       value=st.integers(min_value=1, max_value=1 << 20))
def test_any_positive_integer_override_round_trips(key: str, value: int) -> None:
    parsed_key, parsed_value = parse_override(f"{key}={value}")
    assert (parsed_key, parsed_value) == (key, value)
    arch = FUSEMAX.with_overrides({parsed_key: parsed_value})
    node: object = arch
    for part in key.split("."):
        node = getattr(node, part)
    assert node == value
    assert arch.model_dump() == FUSEMAX.with_overrides({key: value}).model_dump()


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(min_value=1, max_value=1 << 16))
def test_any_whole_number_of_rows_is_a_valid_capacity(rows: int) -> None:
    arch = FUSEMAX.with_overrides(dict([parse_override(f"global_buffer.capacity_bytes={rows * 512}")]))
    assert arch.global_buffer.capacity_bytes == rows * 512


@settings(max_examples=25, deadline=None)
@given(value=st.integers(max_value=0))
def test_any_non_positive_rows_override_is_rejected(value: int) -> None:
    with pytest.raises(SpecError) as info:
        FUSEMAX.with_overrides({"arrays.pe2d.rows": value})
    assert str(info.value) == (f"--set arrays.pe2d.rows={value}: expected a positive integer, "
                               f"got {value}")


@pytest.mark.parametrize(("text", "expected"), [
    ("arrays.pe2d.rows=32", ("arrays.pe2d.rows", 32)),
    (" clock_hz = 1e9", ("clock_hz", 1e9)),
    ("clock_hz=940.0e6", ("clock_hz", 940e6)),
    ("description=a small test chip", ("description", "a small test chip")),
    ("arrays.pe2d.ops.exp=null", ("arrays.pe2d.ops.exp", None)),
    ("energy.pe2d.mac={pj: 1, per: op}", ("energy.pe2d.mac", {"pj": 1, "per": "op"})),
    ("name=x=y", ("name", "x=y")),
])
def test_parse_override(text: str, expected: tuple[str, object]) -> None:
    assert parse_override(text) == expected


@pytest.mark.parametrize("text", ["rows", "=3", "a..b=1", ".a=1"])
def test_parse_override_rejects_text_without_a_key(text: str) -> None:
    with pytest.raises(SpecError, match=r"^--set .*: expected KEY=VALUE"):
        parse_override(text)


def test_parse_overrides_later_key_wins() -> None:
    assert parse_overrides(["a.b=1", "c=2", "a.b=3"]) == {"a.b": 3, "c": 2}
    assert parse_overrides(None) == {}


@pytest.mark.parametrize(("overrides", "message"), [
    ({"arrays.pe2d.rowz": 32},
     "--set arrays.pe2d.rowz=32: unknown key 'rowz' (known: rows, cols, ops)"),
    ({"arrays.pe2d.rows": -4}, "--set arrays.pe2d.rows=-4: expected a positive integer, got -4"),
    ({"arrays.pe2d.rows": "many"},
     "--set arrays.pe2d.rows=many: expected a positive integer, got 'many'"),
    ({"arrays.pe2d.rows": 2.5}, "--set arrays.pe2d.rows=2.5: expected a positive integer, got 2.5"),
    ({"arrays.pe2d.rows": True}, "--set arrays.pe2d.rows=true: expected a positive integer, got true"),
    ({"arrays.pe2d.rows.x": 1}, "--set arrays.pe2d.rows.x=1: arrays.pe2d.rows is a value, not a "
                                "section with keys"),
    ({"global_buffer.capacity_bytes": 1000},
     "--set global_buffer.capacity_bytes=1000: expected a multiple of row_bytes (512), got 1000"),
    ({"clock_hz": 0}, "--set clock_hz=0: expected a positive number, got 0"),
    ({"energy.pe2d.mac.pj": -1.0}, "--set energy.pe2d.mac.pj=-1.0: expected a number >= 0, got -1.0"),
    ({"energy.pe2d.mac.per": "row"},
     "--set energy.pe2d.mac.per=row: expected 'op' for pe2d, got 'row'"),
    ({"arrays.pe2d.ops.div": 2},
     "specs/arch/fusemax-cloud.yaml with --set arrays.pe2d.ops.div=2: energy: missing entry "
     "'pe2d.div' (arrays.pe2d.ops has div)"),
])
def test_bad_overrides_give_one_line_errors(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError) as info:
        FUSEMAX.with_overrides(overrides)
    assert str(info.value) == message


def test_unknown_energy_entry_override_lists_the_entries() -> None:
    with pytest.raises(SpecError, match=r"^--set energy\.pe2d\.mul\.pj=3: unknown key 'pe2d\.mul\.pj' "
                                        r"\(known: pe2d\.mac, pe2d\.add, "):
        FUSEMAX.with_overrides({"energy.pe2d.mul.pj": 3})


# ------------------------------------------------------------------------------------- bad spec files


def _write_variant(tmp_path: Path, old: str, new: str) -> Path:
    assert FUSEMAX_TEXT.count(old) == 1, old
    path = tmp_path / "variant.yaml"
    path.write_text(FUSEMAX_TEXT.replace(old, new), encoding="utf-8")
    return path


MAX_SOURCE = (', source: "Accelergy 45 nm ERT, mac_max = comparator + 2:1 mux (Library + NeuroSim); '
              'FuseMax artifact ERT.yaml, fact sheet §3.5, §8"}')


@pytest.mark.parametrize(("old", "new", "message"), [
    ("    rows: 256", "    rows: -4", "arrays.pe2d.rows: expected a positive integer, got -4"),
    ("    rows: 256", "    rows: many", "arrays.pe2d.rows: expected a positive integer, got 'many'"),
    ("    rows: 256", "    rows: [256]", "arrays.pe2d.rows: expected a positive integer, got a list"),
    ("clock_hz: 940.0e6", "clock_hz: fast", "clock_hz: expected a positive number, got 'fast'"),
    ("clock_hz: 940.0e6", "", "clock_hz: missing required key"),
    ("  access_bytes: 8 ", "  ", "dram.access_bytes: missing required key"),
    ("    rows: 256", "    rowz: 256",
     "arrays.pe2d.rowz: unknown key 'rowz' (known: rows, cols, ops) (and 1 more problem)"),
    ("word_bytes: 2", "word_bytes: 2\nvoltage: 0.9",
     "voltage: unknown key 'voltage' (known: name, description, clock_hz, word_bytes, arrays, "
     "global_buffer, dram, energy, area)"),
    ("pe2d.max:  {pj: 0.028036, per: op" + MAX_SOURCE, "pe2d.max:  {pj: 0.028036, per: op}",
     "energy.pe2d.max.source: missing required key"),
    ("pe2d.max:  {pj: 0.028036, per: op" + MAX_SOURCE, "pe2d.max:  {pj: 0.028036, per: op, source: ' '}",
     "energy.pe2d.max.source: expected a non-empty string, got ' '"),
    ("pe2d.mac:  {pj: 17.1645, per: op", "pe2d.mac:  {pj: 17.1645, per: bit",
     "energy.pe2d.mac.per: expected 'op', 'word', 'row' or 'access', got 'bit'"),
    ("  dram.read: ", "  hbm.read: ", "energy.hbm.read: expected a key 'component.action' with component "
     "one of pe2d, pe1d, pe2d.register_file, pe1d.register_file, global_buffer, dram"),
    ("ops: {mac: 1, add: 1, max: 1, exp: 7, log: 7}", "ops: {mac: 1, add: 1, max: 1}",
     "energy.pe2d.exp: unknown action 'exp' of arrays.pe2d.ops (known: mac, add, max)"),
    ("ops: {mac: 1, add: 1, max: 1, exp: 7, log: 7}", "ops: {}",
     "arrays.pe2d.ops: expected at least one of mac, add, max, exp, div, log"),
    ("ops: {mac: 1, add: 1, max: 1, exp: 7, log: 7}", "ops: {mac: 1, add: 1, max: 1, exp: 7, sqrt: 9}",
     "arrays.pe2d.ops.sqrt: unknown key 'sqrt' (known: mac, add, max, exp, div, log)"),
    ("{counted_in: pe2d.mac,", "{counted_in: pe2d.mul,",
     "area.pe2d.add.counted_in: expected the key of an area entry with um2 (one of pe2d.register_file, "
     "pe2d.mac, pe2d.max, pe1d.register_file, pe1d.mac, pe1d.max, pe1d.div, global_buffer.sram, "
     "dram.hbm2), got 'pe2d.mul'"),
    ("{counted_in: pe2d.mac,", "{counted_in: pe1d.mac,",
     "area.pe2d.add.counted_in: expected an entry of the same component 'pe2d', got 'pe1d.mac'"),
    ("{counted_in: pe2d.mac,", "{um2: 3, counted_in: pe2d.mac,",
     "area.pe2d.add: expected exactly one of um2 (area per instance) or counted_in (the key of the entry "
     "that already includes this part)"),
    ("arrays:\n", "arrays: [1]\nold_arrays:\n",
     "old_arrays: unknown key 'old_arrays' (known: name, description, clock_hz, word_bytes, arrays, "
     "global_buffer, dram, energy, area) (and 1 more problem)"),
])
def test_bad_spec_files_give_one_line_errors_with_file_and_key_path(
        tmp_path: Path, old: str, new: str, message: str) -> None:
    path = _write_variant(tmp_path, old, new)
    with pytest.raises(SpecError) as info:
        load_arch(path)
    assert str(info.value) == f"{path}: {message}"
    assert "\n" not in str(info.value)


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = _write_variant(tmp_path, "    cols: 256", "    cols: 256: 3")
    line = 1 + path.read_text(encoding="utf-8").splitlines().index("    cols: 256: 3")
    with pytest.raises(SpecError) as info:
        load_arch(path)
    assert str(info.value) == f"{path}:{line}: malformed YAML: mapping values are not allowed here"


def test_duplicate_keys_are_rejected_with_their_line(tmp_path: Path) -> None:
    path = _write_variant(tmp_path, "    cols: 256", "    cols: 256\n    cols: 128")
    line = 1 + path.read_text(encoding="utf-8").splitlines().index("    cols: 128")
    with pytest.raises(SpecError) as info:
        load_arch(path)
    assert str(info.value) == f"{path}:{line}: malformed YAML: duplicate key 'cols'"


def test_exponent_without_dot_is_a_number(tmp_path: Path) -> None:
    path = _write_variant(tmp_path, "clock_hz: 940.0e6", "clock_hz: 940e6")
    assert load_arch(path).clock_hz == 940e6


@pytest.mark.parametrize(("text", "message"), [
    ("", "expected a mapping of keys at the top level, got null"),
    ("- 1\n- 2\n", "expected a mapping of keys at the top level, got a list"),
])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_arch(path)
    assert str(info.value) == f"{path}: {message}"


def test_unknown_names_and_missing_files() -> None:
    with pytest.raises(SpecError) as info:
        load_arch("tpu-v9")
    assert str(info.value) == ("unknown architecture 'tpu-v9' (known: flat-cloud, flat-edge, "
                               "fusemax-cloud; or give a path to a .yaml file)")
    with pytest.raises(SpecError) as info:
        load_arch("no/such/spec.yaml")
    assert str(info.value) == "no/such/spec.yaml: no such architecture file"


def test_from_mapping_reports_its_origin() -> None:
    data = FUSEMAX.model_dump()
    data["arrays"]["pe1d"]["size"] = 0
    with pytest.raises(SpecError) as info:
        Arch.from_mapping(data, origin="<study sweep point 3>")
    assert str(info.value) == "<study sweep point 3>: arrays.pe1d.size: expected a positive integer, got 0"
    assert Arch.from_mapping(FUSEMAX.model_dump()) == FUSEMAX


def test_spec_error_is_a_value_error_on_one_line() -> None:
    assert issubclass(SpecError, ValueError)
    assert str(SpecError("a\nb")) == "a b"
