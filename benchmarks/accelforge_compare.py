"""attnsim's mapping search against AccelForge on the fused QK -> AV problem (issue #18's last line).

    python benchmarks/accelforge_compare.py [--seq 1024] [--out-dir DIR]
        [--accelforge-python /tmp/afvenv/bin/python] [--variants raw,pe-qk,pe-all]

Problem: one head, batch 1, E = F = 64, M = P = --seq; QK[m,p] = Q[e,p] K[e,m], AV[f,p] = QK[m,p] V[f,m]
(benchmarks/data/accelforge/qk-av.yaml: the two contractions, no softmax; AccelForge's attention examples
model the softmax as a pass-through Einsum, here it is left out on both sides). Architecture: attnsim's
flat-edge (specs/arch/flat-edge.yaml: DRAM, 512 KB global buffer, 32 x 32 PE array of MACs, 940 MHz); the
AccelForge spec is generated from the same file's energy table (every number's source is written into the
spec as a comment), so both tools price an action the same.

attnsim's side runs here: `attnsim search --objective energy` (whole map space), then `attnsim simulate` of
the best mapping for its energy breakdown. With --accelforge-python the AccelForge side runs in that
interpreter (benchmarks/accelforge_side.py, a subprocess; attnsim does not import accelforge), on each
variant's generated spec, written to --out-dir next to its results:

  raw     DRAM, global buffer, MACs: no storage in the PE (AccelForge's simple.yaml shape)
  pe-qk   plus a 4-word PE register at 0 pJ that may hold only QK (attnsim forwards QK in the PE, uncharged)
  pe-all  plus a 4-word PE register at 0 pJ that may hold any tensor (operand reuse in the PE for free)
  pe-priced  the pe-all register priced as flat-edge's PE register file (pe2d.register_file.read/write)
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data" / "accelforge"
CASCADE = DATA / "qk-av.yaml"
MODEL = DATA / "one-head.yaml"
ARCH = "flat-edge"
ARCH_FILE = ROOT / "specs" / "arch" / f"{ARCH}.yaml"
VARIANTS = ("raw", "pe-qk", "pe-all")     # and "pe-priced" (not in the default set)


def search_wall_s(seq: int) -> float:
    """The search alone, in this process (no interpreter start-up): make_problem + search, objective energy."""
    from attnsim.archsim import load_arch
    from attnsim.mappers.cascade_mapper import load_cascade_arg
    from attnsim.mappers.search.driver import search
    from attnsim.mappers.search.mapspace import make_problem
    from attnsim.mappers.workloads import load_workload
    problem = make_problem(load_cascade_arg(str(CASCADE)), load_workload(str(MODEL)), seq, load_arch(ARCH), None)
    t0 = time.perf_counter()
    search(problem, "energy")
    return time.perf_counter() - t0


_NODE = re.compile(r"Storage\(tensors=(\[[^\]]*\]), component='(\w+)'|Temporal\(rank_variable='(\w+)', "
                   r"tile_shape=(\d+)|(Spatial\(\w+, in \[[^)]*\) shape=\d+, \w+, \w+\))|Compute\(einsum='(\w+)'"
                   r"|(Sequential)\(")


def compact_mapping(text: str) -> str:
    """AccelForge's mapping (its repr) as one line: storage nodes, temporal loops, spatial loops, computes."""
    out = []
    for m in _NODE.finditer(text):
        if m.group(1):
            names = ",".join(re.findall(r"'(\w+)'", m.group(1)))
            out.append(f"[{names} in {m.group(2)}]")
        elif m.group(3):
            out.append(f"for {m.group(3)} tile {m.group(4)}")
        elif m.group(5):
            out.append(m.group(5))
        elif m.group(6):
            out.append(f"-> {m.group(6)} |")
        else:
            out.append("Sequential:")
    return " ".join(out)


def attnsim_side(seq: int, out_dir: Path) -> dict:
    cli = [sys.executable, "-c", "from attnsim.studies.cli import main; main()"]
    best = out_dir / f"attnsim_best_seq{seq}.yaml"
    t0 = time.perf_counter()
    res = subprocess.run(cli + ["search", "--cascade", str(CASCADE), "--arch", ARCH, "--model", str(MODEL),
                                "--seq", str(seq), "--objective", "energy", "--quiet", "--json",
                                "--out", str(best)], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    front = json.loads(res.stdout)
    pt = min(front, key=lambda p: (not p.get("best"), p["energy_pj"]))
    lowest = min(front, key=lambda p: p["energy_pj"])
    sim = json.loads(subprocess.run(cli + ["simulate", "--cascade", str(CASCADE), "--mapping", str(best),
                                           "--model", str(MODEL), "--seq", str(seq), "--arch", ARCH, "--json"],
                                    check=True, capture_output=True, text=True).stdout)
    return {"tool": "attnsim", "wall_s": search_wall_s(seq), "process_wall_s": wall, "front_points": len(front), "energy_pj": pt["energy_pj"],
            "lowest_front_energy_pj": lowest["energy_pj"], "latency_s": pt["latency_s"],
            "onchip_bytes": pt["onchip_bytes"], "traffic_bytes": pt["traffic_bytes"],
            "energy_breakdown_pj": sim["energy_breakdown_pj"], "sim_energy_pj": sim["energy_pj"],
            "loops": yaml.safe_load(best.read_text())["loops"], "placement": sim["choices"]["placement"],
            "binding": sim["choices"]["binding"]}


def accelforge_spec(seq: int, variant: str) -> str:
    """AccelForge spec text for one variant; every number from ARCH_FILE or the problem, said where."""
    a = yaml.safe_load(ARCH_FILE.read_text())
    e = a["energy"]
    wb = a["word_bytes"]
    row_bits = a["global_buffer"]["row_bytes"] * 8
    dram_bits = a["dram"]["access_bytes"] * 8
    rows, cols = a["arrays"]["pe2d"]["rows"], a["arrays"]["pe2d"]["cols"]
    glb_bits = a["global_buffer"]["capacity_bytes"] * 8
    bw = a["dram"]["bandwidth_bytes_per_s"]
    clk = a["clock_hz"]
    for k, per in (("dram.read", "access"), ("dram.write", "access"), ("global_buffer.read", "row"),
                   ("global_buffer.write", "row"), ("pe2d.mac", "op")):
        assert e[k]["per"] == per, (k, e[k])
    pe = ""
    reg_read = reg_write = 0
    reg_note = ("0 pJ: attnsim forwards a tile-local intermediate in the\n  # PE without charging it (placement `pe`)")
    if variant == "pe-priced":
        reg_read, reg_write = e["pe2d.register_file.read"]["pj"], e["pe2d.register_file.write"]["pj"]
        assert e["pe2d.register_file.read"]["per"] == "word"
        reg_note = (f"priced as pe2d.register_file.read/write: {reg_read} / {reg_write} pJ per word\n"
                    f"  # ({e['pe2d.register_file.read']['source']})")
    if variant != "raw":
        keep = "QK" if variant == "pe-qk" else "All"
        pe = f"""  - !Container
    name: PE
    spatial:                    # {ARCH_FILE.name} arrays.pe2d: {rows} x {cols}
    - {{name: rows, fanout: {rows}}}
    - {{name: cols, fanout: {cols}}}
  # The per-PE register file (arrays.pe2d: 4 x 16 b). {reg_note}; variant {variant}: may hold {keep}.
  - !Memory
    name: PERegister
    size: 4 * {wb * 8}
    leak_power: 0
    area: 0
    tensors: {{keep: Nothing, may_keep: {keep}}}
    actions:
    - {{name: read, energy: {reg_read}, bits_per_action: {wb * 8}, throughput: inf}}
    - {{name: write, energy: {reg_write}, bits_per_action: {wb * 8}, throughput: inf}}
"""
    mac_spatial = "" if pe else f"""    spatial:                    # {ARCH_FILE.name} arrays.pe2d: {rows} x {cols}
    - {{name: rows, fanout: {rows}}}
    - {{name: cols, fanout: {cols}}}
"""
    return f"""# AccelForge spec generated by benchmarks/accelforge_compare.py (variant {variant}, seq {seq}).
# Architecture: attnsim's {ARCH} ({ARCH_FILE.relative_to(ROOT)}); energies in pJ per action, copied from its
# `energy` table so both tools price each action alike; no hwcomponents estimation (energy, area given).
#   MainMemory read/write: {e['dram.read']['pj']} pJ per {dram_bits}-bit access (dram.read/write: {e['dram.read']['source']})
#   GlobalBuffer read:  {e['global_buffer.read']['pj']} pJ per {row_bits}-bit row (global_buffer.read: {e['global_buffer.read']['source']})
#   GlobalBuffer write: {e['global_buffer.write']['pj']} pJ per {row_bits}-bit row (global_buffer.write: {e['global_buffer.write']['source']})
#   MAC compute: {e['pe2d.mac']['pj']} pJ per op (pe2d.mac: {e['pe2d.mac']['source']})
# Throughputs (latency only): DRAM {bw} B/s (dram.bandwidth_bytes_per_s) / {a['dram']['access_bytes']} B per access;
# MAC {clk} ops/s per PE (clock_hz, 1 cycle per MAC); global buffer bandwidth not modelled (as in attnsim).
# Area and leakage 0: not compared.
arch:
  nodes:
  - !Memory
    name: MainMemory
    size: inf
    leak_power: 0
    area: 0
    tensors: {{keep: ~Intermediates, may_keep: All}}
    actions:
    - {{name: read, energy: {e['dram.read']['pj']}, bits_per_action: {dram_bits}, throughput: {bw} / {a['dram']['access_bytes']}}}
    - {{name: write, energy: {e['dram.write']['pj']}, bits_per_action: {dram_bits}, throughput: {bw} / {a['dram']['access_bytes']}}}
  - !Memory
    name: GlobalBuffer
    size: {glb_bits}                # global_buffer.capacity_bytes * 8
    leak_power: 0
    area: 0
    tensors: {{keep: ~MainMemory, may_keep: All}}
    actions:
    - {{name: read, energy: {e['global_buffer.read']['pj']}, bits_per_action: {row_bits}, throughput: inf}}
    - {{name: write, energy: {e['global_buffer.write']['pj']}, bits_per_action: {row_bits}, throughput: inf}}
{pe}  - !Compute
    name: MAC
    leak_power: 0
    area: 0
{mac_spatial}    actions:
    - {{name: compute, energy: {e['pe2d.mac']['pj']}, throughput: {clk}}}
# Problem: {CASCADE.relative_to(ROOT)} on {MODEL.relative_to(ROOT)} (one head, batch 1), fp16 words ({ARCH_FILE.name} word_bytes {wb}).
workload:
  rank_sizes: {{M: {seq}, P: {seq}, E: 64, F: 64}}
  bits_per_value: {{All: {wb * 8}}}
  einsums:
  - einsum: "QK[m, p] = Q[m, e] * K[M: p, e]"
    renames: {{input: Q, weight: K}}
  - einsum: "AV[m, f] = QK[m, p] * V[M: p, E: f]"
    renames: {{input: QK, weight: V}}
"""


def accelforge_side(python: str, seq: int, variant: str, out_dir: Path, jobs: int) -> dict:
    spec = out_dir / f"accelforge_{variant}_seq{seq}.yaml"
    spec.write_text(accelforge_spec(seq, variant))
    out = out_dir / f"accelforge_{variant}_seq{seq}.json"
    t0 = time.perf_counter()
    subprocess.run([python, str(ROOT / "benchmarks" / "accelforge_side.py"), str(spec), str(out), str(jobs)],
                   check=True, cwd=out_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    r = json.loads(out.read_text())
    r["process_wall_s"] = time.perf_counter() - t0
    r["mapping"] = compact_mapping(r["mapping_text"])
    return r


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--out-dir", type=Path, default=Path("accelforge_compare_out"))
    ap.add_argument("--accelforge-python", help="an interpreter with accelforge installed")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--jobs", type=int, default=2, help="AccelForge's n_parallel_jobs")
    args = ap.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    at = attnsim_side(args.seq, args.out_dir)
    rows = [("attnsim search", at["energy_pj"], at["latency_s"], at["wall_s"])]
    results = {"seq": args.seq, "attnsim": at, "accelforge": {}}
    if args.accelforge_python:
        for v in args.variants.split(","):
            r = accelforge_side(args.accelforge_python, args.seq, v, args.out_dir, args.jobs)
            results["accelforge"][v] = r
            rows.append((f"AccelForge {v}", r["energy_pj"], r["latency_s"], r["wall_s"]))
    if results["accelforge"]:
        first = next(iter(results["accelforge"].values()))
        results["accelforge_version"] = first.get("version")
        results["date_utc"] = first.get("date_utc")
    # the combined record: AccelForge's verbose mapping repr stays in the per-variant JSON only
    slim = {**results, "accelforge": {v: {k: x for k, x in r.items() if k != "mapping_text"}
                                      for v, r in results["accelforge"].items()}}
    (args.out_dir / f"compare_seq{args.seq}.json").write_text(json.dumps(slim, indent=1))
    print(f"fused QK -> AV, one head, E = F = 64, M = P = {args.seq}, on {ARCH}")
    print("wall_s: the mapper/search alone (attnsim: in this process; AccelForge: map_workload_to_arch)")
    print(f"{'tool':<20} {'energy_pj':>14} {'latency_s':>12} {'wall_s':>8} {'vs attnsim':>10}")
    for name, en, lat, wall in rows:
        print(f"{name:<20} {en:>14.6g} {lat:>12.6g} {wall:>8.1f} {en / at['energy_pj']:>10.4f}")
    print("attnsim energy breakdown (pJ):", {k: round(v) for k, v in at["energy_breakdown_pj"].items()})
    print("attnsim mapping: loops", at["loops"], "placement", at["placement"])
    for v, r in results["accelforge"].items():
        print(f"AccelForge {v} per component (pJ):", {k: round(x) for k, x in r["energy_per_component_pj"].items()})
        print(f"AccelForge {v} mapping:", r["mapping"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
