"""attnsim's built-in specs (YAML data, no code): cascades, architectures, workloads, mappings, studies.

Installed as ``attnsim.specs``; code finds these files with ``importlib.resources.files("attnsim.specs")``,
so they are found the same way from a source checkout, an editable install and a wheel.
"""
