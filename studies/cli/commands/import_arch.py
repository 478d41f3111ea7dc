"""``attnsim import accelergy ERT.yaml [ART.yaml] --base ARCH --out FILE`` and ``attnsim import timeloop
ARCH.yaml --base ARCH --out FILE``: an architecture YAML built from a peer tool's files
(:mod:`archsim.importers`). The result is validated before it is written (a refused import writes
nothing); what came from the peer file, what was kept from ``--base`` and what had no counterpart
are printed."""
from __future__ import annotations

import argparse
from pathlib import Path

from attnsim.studies.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "import", help="build an architecture YAML from Accelergy ERT/ART or a Timeloop v0.4 arch",
        description="Import a peer tool's description into an attnsim architecture YAML: Accelergy "
                    "energy/area reference tables onto a base architecture, or a Timeloop v0.4 "
                    "(AccelForge-style) architecture where it maps. Refusals are one line naming the key.")
    kinds = parser.add_subparsers(dest="source", metavar="SOURCE")
    accelergy = kinds.add_parser("accelergy", help="Accelergy ERT.yaml (and ART.yaml) -> energy / area tables",
                                 description="Replace the base architecture's energy (and area) entries that "
                                             "an Accelergy ERT (ART) names, each with its source.")
    accelergy.add_argument("ert", metavar="ERT.yaml")
    accelergy.add_argument("art", metavar="ART.yaml", nargs="?")
    accelergy.add_argument("--map", dest="names", action="append", default=[], metavar="ACCELERGY=COMPONENT",
                           help="name an Accelergy component (a suffix of its dotted name, optionally "
                                ":ACTION) as an attnsim one, e.g. 'PE.mac:mac_random=pe2d.mac' (repeatable)")
    timeloop = kinds.add_parser("timeloop", help="Timeloop v0.4 / AccelForge arch YAML -> architecture",
                                description="Map a Timeloop v0.4 architecture (memory hierarchy, spatial "
                                            "fanout, per-action energies) onto attnsim's organisation.")
    timeloop.add_argument("arch_file", metavar="ARCH.yaml")
    for sub in (accelergy, timeloop):
        sub.add_argument("--base", default="fusemax-cloud",
                         help="architecture (name in specs/arch/ or YAML path) giving what the file does not "
                              "(default fusemax-cloud)")
        sub.add_argument("--out", required=True, metavar="FILE", help="the architecture YAML to write")
        sub.add_argument("--name", help="the new architecture's name (default: BASE-accelergy / BASE-timeloop)")
        sub.set_defaults(func=run)
    parser.set_defaults(func=_no_source)


def _no_source(args: argparse.Namespace) -> int:
    raise UsageError("import: expected a source: accelergy ERT.yaml [ART.yaml] or timeloop ARCH.yaml")


def _names(texts: list[str]) -> dict[str, str]:
    names = {}
    for text in texts:
        pattern, sep, target = text.partition("=")
        if not sep or not pattern.strip() or not target.strip():
            raise UsageError(f"--map {text}: expected ACCELERGY_NAME=COMPONENT, e.g. PE.mac=pe2d.mac")
        names[pattern.strip()] = target.strip()
    return names


def run(args: argparse.Namespace) -> int:
    """Import, validate, write, report."""
    from attnsim.archsim.importers import import_accelergy, import_timeloop, write_arch_yaml

    if args.source == "accelergy":
        outcome = import_accelergy(args.ert, args.art, base=args.base, names=_names(args.names), name=args.name)
        what = f"Accelergy {Path(args.ert).name}" + (f" + {Path(args.art).name}" if args.art else "")
    else:
        outcome = import_timeloop(args.arch_file, base=args.base, name=args.name)
        what = f"Timeloop {Path(args.arch_file).name}"
    header = (f"{outcome.data['name']}: written by `attnsim import {args.source}` from {what} onto --base "
              f"{args.base}.\nEvery imported energy / area entry names its source; the rest is the base's.")
    target = write_arch_yaml(outcome, args.out, header)
    print(f"wrote {target}: {len(outcome.mapped)} values from {what}, {len(outcome.kept)} kept from {args.base}")
    print(f"  from the file: {', '.join(outcome.mapped)}")
    print(f"  kept from {args.base}: {', '.join(outcome.kept) or '(nothing)'}")
    if outcome.unmapped:
        print(f"  not mapped (no attnsim counterpart): {', '.join(outcome.unmapped)}")
    return 0
