# %% [markdown]
# # attnsim quickstart
#
# Load an architecture, override its global buffer, simulate FuseMax and FLAT for BERT-Base at 64K
# tokens on that one chip, and plot. Open it as a notebook (Jupyter, VS Code: percent format) or run
# `python examples/quickstart.py`. Units are in the column names (`latency_s` s, `energy_pj` pJ).

# %%
import attnsim
import pandas as pd

arch = attnsim.load_arch("fusemax-cloud", {"global_buffer.capacity_bytes": 2 * 2**20})  # a 2 MiB buffer
runs = [attnsim.simulate(design, "bert-base", "64K", arch=arch) for design in ("fusemax", "flat")]
frame = pd.concat([run.to_frame() for run in runs], ignore_index=True)
frame.plot.bar(x="design", y="latency_s", logy=True, ylabel="latency (s)", legend=False)
frame[["design", "arch", "design_default_arch", "latency_s", "energy_pj", "util_2d", "util_1d"]]

# %% [markdown]
# Both designs ran on the modified `fusemax-cloud` (column `arch`); FLAT's own chip would be
# `attnsim.load_arch("flat-cloud")` (column `design_default_arch`). `attnsim.sweep("paper")` runs the
# paper's whole study; `attnsim.results(directory)` reads any sweep back as a DataFrame.
