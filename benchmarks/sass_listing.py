"""What the SASS-count scripts share (benchmarks/sass_counts.py, benchmarks/triton_sass_counts.py).

``cuobjdump -sass`` listings: one instruction per line as ``/*addr*/  [@P] OPCODE operands ;``. A
kernel's main loop is found as the span from a backward branch's target to that branch holding the
most tensor-core instructions (one iteration of the loop, as the compiler laid it out).
"""
from __future__ import annotations

import collections
import csv
import re
from pathlib import Path

INSTRUCTION = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)([^;]*);")
"""Address, opcode (with its modifiers, e.g. ``LDS.64``) and operands of one listed instruction."""


def heaviest_loop(listing: str, tensor_ops: tuple[str, ...] = ("HMMA",)) -> collections.Counter:
    """Full-opcode counts of the backward-branch span of ``listing`` (one function's SASS) that holds
    the most instructions whose opcode family is in ``tensor_ops``."""
    ins = [(int(a, 16), op, rest) for a, op, rest in INSTRUCTION.findall(listing)]
    where = {a: i for i, (a, _, _) in enumerate(ins)}

    def tensor(span: collections.Counter) -> int:
        return sum(n for op, n in span.items() if op.split(".")[0] in tensor_ops)

    best: collections.Counter = collections.Counter()
    for i, (a, op, rest) in enumerate(ins):
        target = re.search(r"0x([0-9a-f]+)", rest) if op == "BRA" else None
        if target and int(target.group(1), 16) <= a and int(target.group(1), 16) in where:
            span = collections.Counter(o for _, o, _ in ins[where[int(target.group(1), 16)]:i + 1])
            if tensor(span) > tensor(best):
                best = span
    return best


def families(span: collections.Counter) -> collections.Counter:
    """The counts by opcode family (``LDS.64`` -> ``LDS``)."""
    out: collections.Counter = collections.Counter()
    for op, n in span.items():
        out[op.split(".")[0]] += n
    return out


def write_counts(path: Path, comment: str, rows: list[dict]) -> None:
    """``rows`` as CSV under ``# ``-prefixed ``comment`` lines, every row's keys as columns; each row
    is printed too."""
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="") as handle:
        handle.writelines(f"# {line}\n" for line in comment.splitlines())
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    for row in rows:
        print(", ".join(f"{k}={v}" for k, v in row.items()))


__all__ = ["INSTRUCTION", "families", "heaviest_loop", "write_counts"]
