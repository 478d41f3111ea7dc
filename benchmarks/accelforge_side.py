"""The AccelForge side of benchmarks/accelforge_compare.py; runs in AccelForge's own interpreter.

    /tmp/afvenv/bin/python benchmarks/accelforge_side.py SPEC.yaml OUT.json

Runs AccelForge's default fused mapper (Fast & Fusiest, `Spec.map_workload_to_arch`, metric energy) on
SPEC.yaml and writes the best mapping's energy (total, per component, per action and tensor), latency,
the mapping (text and Graphviz DOT) and the mapper's wall time to OUT.json. attnsim never imports this
file (attnsim does not depend on accelforge).
"""

import json
import os
from importlib import metadata
import sys
import time
from datetime import datetime, timezone


def main(spec_path: str, out_path: str, jobs: int = 2) -> None:
    import accelforge as af
    import accelforge.frontend.mapping.mapping as afm

    # The mapper renders each chosen mapping to mapping.svg with Graphviz's `dot`, which this machine does
    # not have: render to DOT source instead (the mapping itself is unchanged).
    afm.Mapping.render = lambda self, **k: self.render_pydot(**k).to_string()
    af.set_n_parallel_jobs(jobs, print_message=False)
    spec = af.Spec.from_yaml(spec_path)
    spec.mapper.metrics = af.mapper.Metrics.ENERGY
    t0 = time.perf_counter()
    mappings = spec.map_workload_to_arch()
    wall = time.perf_counter() - t0
    row = mappings.data.iloc[0]
    actions = {}
    for col, val in row.items():
        parts = col.split("<SEP>")
        if len(parts) == 5 and parts[1] in ("action", "energy") and val:
            einsum, kind, comp, tensor, act = parts
            actions.setdefault(f"{einsum}.{comp}.{tensor}.{act}", {})[kind] = float(val)
    m = mappings.mapping()
    out = {
        "tool": "accelforge",
        "version": metadata.version("accelforge"),
        "hwcomponents_version": metadata.version("hwcomponents"),
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "spec": os.path.basename(spec_path),
        "mapper": "Spec.map_workload_to_arch (FFM, Fast & Fusiest), metrics ENERGY, n_parallel_jobs %d" % jobs,
        "wall_s": wall,
        "n_mappings_returned": len(mappings.data),
        "energy_pj": float(mappings.energy()),
        "energy_per_component_pj": {k: float(v) for k, v in mappings.energy(per_component=True).items()},
        "latency_s": float(mappings.latency()),
        "latency_per_component_s": {k: float(v) for k, v in mappings.latency(per_component=True).items()},
        "actions": actions,
        "mapping_text": str(m),
        "mapping_dot": m.render_pydot().to_string(),
    }
    with open(out_path, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 2)
