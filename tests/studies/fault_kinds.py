"""A test point kind that can misbehave on purpose: crash its worker, hang, or wait for a file.

Point parameters: ``x`` (int); optional ``log`` (a file: one line ``x pid`` per evaluation started),
``crash`` ({str(x): "exit" | "segv" | "hang"}), ``hold`` (a file: points whose x is in ``hold_x`` wait
while it exists, at most 60 s), ``sleep_s``. Results are closed forms of x: ``x_cubed``, ``x_half``.
Used in-process (registered with register_kind) and as an installed plugin (kind_plugin).
"""
from __future__ import annotations

import os
import signal
import time
from typing import Any

HOLD_LIMIT_S = 60.0


def evaluate(point: dict[str, Any]) -> dict[str, Any]:
    params = point["params"]
    x = params["x"]
    if params.get("log"):
        with open(params["log"], "a", encoding="utf-8") as log:
            log.write(f"{x} {os.getpid()}\n")
    crash = params.get("crash", {}).get(str(x))
    if crash == "exit":
        os._exit(7)
    if crash == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if crash == "hang":
        time.sleep(120)
    if params.get("hold") and x in params.get("hold_x", []):
        deadline = time.monotonic() + HOLD_LIMIT_S
        while os.path.exists(params["hold"]) and time.monotonic() < deadline:
            time.sleep(0.01)
    time.sleep(params.get("sleep_s", 0.0))
    return {"x_cubed": x ** 3, "x_half": x / 2}


def evaluate_nan(point: dict[str, Any]) -> dict[str, Any]:
    return {"x": point["params"]["x"], "bad": float("nan")}
