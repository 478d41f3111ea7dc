"""Hardware specs (YAML -> validated objects), cost models, the event-driven engine, PE-level simulation.

Never imports ``mappers``: a mapper produces a schedule, archsim executes it.
"""
