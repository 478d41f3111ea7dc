"""Load and validate a cascade YAML file (format: docs/einsum-syntax.md) into a :class:`Cascade`.

Every problem is reported as a one-line CascadeError with the YAML file's line number.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx
import sympy
import yaml

from attnsim.safe_io import FileProblem, check_yaml_shape, read_text

from attnsim.einsum_ir import scheduling
from attnsim.einsum_ir.declarations import FunctionSpec, ReduceSpec, declare_functions, declare_reduce_ops
from attnsim.einsum_ir.errors import CascadeError, cascade_error
from attnsim.einsum_ir.functions import RESERVED_WORDS
from attnsim.einsum_ir.model import Cascade, Einsum, TensorRef, rank_symbol, shape_symbol
from attnsim.einsum_ir.syntax import parse_einsum, parse_shape_expr, parse_stop_condition, strip_comment

KNOWN_KEYS = ("name", "description", "ranks", "shapes", "iterative", "inputs", "outputs", "pass_rank",
              "attention", "closed_form", "reference", "tolerance", "functions", "reduce_ops", "meta", "einsums")
REQUIRED_KEYS = ("name", "ranks", "inputs", "outputs", "einsums")
ATTENTION_ALGORITHMS = ("3pass", "2pass", "1pass", "fusemax")


def load_cascade(path: str | Path) -> Cascade:
    """Read and validate the cascade in ``path``."""
    path = Path(path)
    try:
        text = read_text(path)
    except FileProblem as exc:
        what = exc.detail.replace("cannot read the file", "cannot read cascade file", 1)
        raise cascade_error(str(path), exc.line, what, str(path), "a readable UTF-8 YAML file") from None
    return load_cascade_text(text, path=path)


def load_cascade_text(text: str, *, path: Path | None = None, source: str | None = None) -> Cascade:
    """Parse and validate a cascade from YAML text; ``path`` (or ``source``) names it in errors."""
    return _Loader(text, path, source or (str(path) if path is not None else "<string>")).load()


class _Loader:
    def __init__(self, text: str, path: Path | None, source: str):
        self.text = text
        self.path = path
        self.source = source

    def error(self, line: int | None, what: str, token: Any, expected: str) -> CascadeError:
        return cascade_error(self.source, line, what, str(token), expected)

    # -- YAML helpers --------------------------------------------------------------------------------
    @staticmethod
    def line_of(node: yaml.Node) -> int:
        return node.start_mark.line + 1

    def scalar(self, node: yaml.Node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(self.line_of(node), f"{what} must be a single value", what, "a scalar")
        return str(node.value)

    def mapping(self, node: yaml.Node, what: str) -> list[tuple[yaml.Node, yaml.Node]]:
        if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null"):
            return []
        if not isinstance(node, yaml.MappingNode):
            raise self.error(self.line_of(node), f"{what} must be a mapping", what, "a mapping like {key: value}")
        return list(node.value)

    def name_list(self, node: yaml.Node, what: str) -> list[tuple[str, int]]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(self.line_of(node), f"{what} must be a list", what,
                             "a list of tensor names like [Q, K, V]")
        items = []
        for item in node.value:
            name = self.scalar(item, what)
            if not name.isidentifier():
                raise self.error(self.line_of(item), f"bad tensor name in {what}", name, "an identifier")
            items.append((name, self.line_of(item)))
        return items

    # -- main ------------------------------------------------------------------------------------------
    def load(self) -> Cascade:
        try:
            check_yaml_shape(self.text)
        except FileProblem as exc:
            raise self.error(exc.line, exc.detail, "document", "a YAML mapping of at most "
                             "64 levels") from None
        try:
            root = yaml.compose(self.text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(self.text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            raise self.error(line, "invalid YAML", getattr(exc, "problem", None) or "document",
                             "a YAML mapping") from None
        if not isinstance(root, yaml.MappingNode):
            raise self.error(1, "a cascade file must be a YAML mapping", "document",
                             f"keys {', '.join(REQUIRED_KEYS)}")
        nodes: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key, value in root.value:
            name = self.scalar(key, "key")
            if name not in KNOWN_KEYS:
                raise self.error(self.line_of(key), "unknown key", name, f"one of {', '.join(KNOWN_KEYS)}")
            nodes[name] = (key, value)
        for key in REQUIRED_KEYS:
            if key not in nodes:
                raise self.error(1, "missing key", key, f"a '{key}:' entry")
        self.key_line = {k: self.line_of(v[0]) for k, v in nodes.items()}

        name = self.scalar(nodes["name"][1], "name")
        description = self.scalar(nodes["description"][1], "description") if "description" in nodes else ""
        ranks, symbol_lines = self.load_ranks(nodes["ranks"][1])
        shape_names = {s.name for s in ranks.values()}
        derived = self.load_shapes(nodes["shapes"][1] if "shapes" in nodes else None, shape_names, symbol_lines)
        shape_names |= {s.name for s in derived}
        for expr in derived.values():
            shape_names |= {s.name for s in expr.free_symbols}
        iterative = self.load_iterative(nodes["iterative"][1] if "iterative" in nodes else None, ranks, shape_names,
                                        derived)
        inputs = self.name_list(nodes["inputs"][1], "inputs")
        outputs = self.name_list(nodes["outputs"][1], "outputs")
        declared = declare_functions(self.function_specs(nodes.get("functions", (None, None))[1]),
                                     source=self.source)
        reduce_ops = declare_reduce_ops(self.reduce_specs(nodes.get("reduce_ops", (None, None))[1]), declared,
                                        source=self.source)
        lines = self.einsum_lines(nodes["einsums"][1])
        einsums = [parse_einsum(text, ranks, shape_names, iterative=iterative, line=line, source=self.source,
                                local_functions=declared, local_reduce_ops=reduce_ops)
                   for text, line in lines]
        if not einsums:
            raise self.error(self.line_of(nodes["einsums"][1]), "no Einsums", "einsums", "at least one Einsum line")
        einsums, iterative_dims = self.link_iterative(einsums, iterative)
        tensor_shapes = self.validate_tensors(einsums, inputs, outputs, ranks, derived, iterative, iterative_dims)
        scheduling.schedule(einsums, iterative_dims, iterative, self.source)  # raises on cycles / unschedulable
        warnings = self.recurrence_warnings(einsums, iterative_dims)
        meta = self.load_meta(nodes, data, shape_names)
        graph = build_graph(einsums, iterative_dims)
        tensor_lines = {name: line for name, line in inputs}
        for einsum in einsums:
            tensor_lines.setdefault(einsum.output.tensor, einsum.line)
        return Cascade(name=name, description=description, path=self.path, ranks=ranks, derived_shapes=derived,
                       iterative=iterative, inputs=tuple(n for n, _ in inputs), outputs=tuple(n for n, _ in outputs),
                       einsums=tuple(einsums), tensor_shapes=tensor_shapes, graph=graph, meta=meta,
                       iterative_dims=iterative_dims, symbol_lines=symbol_lines, origin=self.source,
                       tensor_lines=tensor_lines, functions=declared, reduce_ops=reduce_ops, warnings=warnings)

    # -- declared functions and reduce operators -----------------------------------------------------
    def function_specs(self, node: yaml.Node | None) -> list[FunctionSpec]:
        specs: list[FunctionSpec] = []
        if node is None:
            return specs
        for key, value in self.mapping(node, "functions"):
            name, line = self.scalar(key, "function name"), self.line_of(key)
            if isinstance(value, yaml.ScalarNode):
                specs.append(FunctionSpec(name=name, expr=str(value.value), line=line))
                continue
            fields = {self.scalar(k, "key"): v for k, v in self.mapping(value, f"function {name}")}
            unknown = set(fields) - {"args", "expr", "merge", "identity"}
            if unknown or "expr" not in fields:
                raise self.error(line, f"bad declaration of function {name}", sorted(unknown)[0] if unknown else name,
                                 "an expression string, or {args: [x, ...], expr: '...', merge: intersection|union, "
                                 "identity: N}")
            args = None
            if "args" in fields:
                args = tuple(n for n, _ in self.name_list(fields["args"], f"args of {name}"))
            specs.append(FunctionSpec(name=name, expr=self.scalar(fields["expr"], f"expr of {name}"), line=line,
                                      args=args,
                                      merge=self.scalar(fields["merge"], "merge") if "merge" in fields else
                                      "intersection",
                                      identity=self.scalar(fields["identity"], "identity") if "identity" in fields
                                      else None))
        return specs

    def reduce_specs(self, node: yaml.Node | None) -> list[ReduceSpec]:
        specs: list[ReduceSpec] = []
        if node is None:
            return specs
        for key, value in self.mapping(node, "reduce_ops"):
            name, line = self.scalar(key, "reduce operator name"), self.line_of(key)
            fields = {self.scalar(k, "key"): v for k, v in self.mapping(value, f"reduce operator {name}")}
            unknown = set(fields) - {"combine", "identity"}
            if unknown or "combine" not in fields or "identity" not in fields:
                missing = sorted(unknown) or [k for k in ("combine", "identity") if k not in fields]
                raise self.error(line, f"bad declaration of reduce operator {name}", missing[0],
                                 "{combine: FUNCTION or 'a . b expression', identity: N}")
            specs.append(ReduceSpec(name=name, combine=self.scalar(fields["combine"], f"combine of {name}"),
                                    identity=self.scalar(fields["identity"], f"identity of {name}"), line=line))
        return specs

    def load_ranks(self, node: yaml.Node) -> tuple[dict[str, sympy.Symbol], dict[str, int]]:
        ranks: dict[str, sympy.Symbol] = {}
        symbol_lines: dict[str, int] = {}
        for key, value in self.mapping(node, "ranks"):
            rank, shape = self.scalar(key, "rank"), self.scalar(value, "shape")
            for text, what in ((rank, "rank variable"), (shape, "shape symbol")):
                if not text.isidentifier() or text in RESERVED_WORDS:
                    raise self.error(self.line_of(key), f"bad {what} name", text, "an identifier that is not a keyword")
            if rank in ranks:
                raise self.error(self.line_of(key), "rank declared twice", rank, "each rank once")
            ranks[rank] = shape_symbol(shape)
            symbol_lines.setdefault(shape, self.line_of(key))
        if not ranks:
            raise self.error(self.line_of(node), "no ranks declared", "ranks", "a mapping rank -> shape like {m: M}")
        clash = set(ranks) & {s.name for s in ranks.values()}
        if clash:
            name = sorted(clash)[0]
            raise self.error(symbol_lines.get(name), "name used both as rank and shape", name, "distinct names")
        return ranks, symbol_lines

    def load_shapes(self, node: yaml.Node | None, shape_names: set[str],
                    symbol_lines: dict[str, int]) -> dict[sympy.Symbol, sympy.Expr]:
        if node is None:
            return {}
        entries = self.mapping(node, "shapes")
        names = shape_names | {self.scalar(k, "shape") for k, _ in entries}
        derived: dict[sympy.Symbol, sympy.Expr] = {}
        for key, value in entries:
            name = self.scalar(key, "shape")
            if not name.isidentifier():
                raise self.error(self.line_of(key), "bad shape symbol name", name, "an identifier")
            expr = parse_shape_expr(self.scalar(value, name), names, line=self.line_of(value), source=self.source)
            derived[shape_symbol(name)] = expr
            symbol_lines[name] = self.line_of(key)
        for expr in derived.values():
            for symbol in expr.free_symbols:
                symbol_lines.setdefault(symbol.name, self.key_line.get("shapes", 1))
        graph = networkx.DiGraph()
        for symbol, expr in derived.items():
            graph.add_node(symbol)
            for used in expr.free_symbols:
                graph.add_edge(used, symbol)
        try:
            cycle = networkx.find_cycle(graph)
            symbol = cycle[0][0]
            raise self.error(symbol_lines.get(symbol.name), "derived shapes depend on each other", symbol.name,
                             "shapes defined from free shape symbols")
        except networkx.NetworkXNoCycle:
            pass
        return derived

    def load_iterative(self, node: yaml.Node | None, ranks: dict[str, sympy.Symbol], shape_names: set[str],
                       derived: dict[sympy.Symbol, sympy.Expr]) -> dict[str, sympy.Expr]:
        iterative: dict[str, sympy.Expr] = {}
        if node is None:
            return iterative
        for key, value in self.mapping(node, "iterative"):
            rank = self.scalar(key, "iterative rank")
            if rank not in ranks:
                raise self.error(self.line_of(key), "unknown rank variable", rank,
                                 f"one of the declared ranks {', '.join(ranks)}")
            bound = parse_stop_condition(self.scalar(value, rank), rank, set(ranks), shape_names,
                                         line=self.line_of(value), source=self.source)
            if sympy.simplify(_substitute(bound, derived) - _substitute(ranks[rank], derived)) != 0:
                raise self.error(self.line_of(value), "stop bound differs from the rank's shape", value.value,
                                 f"'{rank} >= {ranks[rank]}'")
            iterative[rank] = bound
        return iterative

    def einsum_lines(self, node: yaml.Node) -> list[tuple[str, int]]:
        lines: list[tuple[str, int]] = []
        if isinstance(node, yaml.SequenceNode):
            for item in node.value:
                text = self.scalar(item, "einsums")
                if strip_comment(text):
                    lines.append((text, self.line_of(item)))
            return lines
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(self.line_of(node), "einsums must be a block of lines", "einsums",
                             "'einsums: |' followed by one Einsum per line")
        first = node.start_mark.line + (2 if node.style in ("|", ">") else 1)
        if node.style == ">":
            raise self.error(self.line_of(node), "folded block joins Einsum lines", ">", "a literal block 'einsums: |'")
        for offset, text in enumerate(node.value.split("\n")):
            if strip_comment(text):
                lines.append((text, first + offset))
        return lines

    # -- iterative tensors -----------------------------------------------------------------------------
    def link_iterative(self, einsums: list[Einsum], iterative: dict[str, sympy.Expr]
                       ) -> tuple[list[Einsum], dict[str, tuple[int, str]]]:
        """Find each iterative tensor's dimension and rank; fix roles and names of init lines."""
        iterative_dims: dict[str, tuple[int, str]] = {}
        for einsum in einsums:
            if einsum.role != "update":
                continue
            tensor = einsum.output.tensor
            dim = next(d for d, idx in enumerate(einsum.output.indices)
                       if idx.ranks == {einsum.iterative_rank} and idx.rank_var is None)
            if tensor in iterative_dims:
                raise self.error(einsum.line, "iterative tensor updated twice", str(einsum.output),
                                 f"one update line for {tensor}")
            iterative_dims[tensor] = (dim, einsum.iterative_rank)
        linked: list[Einsum] = []
        for einsum in einsums:
            tensor = einsum.output.tensor
            constants = [d for d, idx in enumerate(einsum.output.indices) if idx.is_constant]
            if einsum.role == "init":
                if tensor not in iterative_dims:
                    raise self.error(einsum.line, "constant output index outside an initialisation",
                                     str(einsum.output), f"an iterative tensor (one written at r+1) or rank variables")
                dim, rank = iterative_dims[tensor]
                if constants != [dim]:
                    raise self.error(einsum.line, "initialisation must fix only the iterative dimension",
                                     str(einsum.output),
                                     f"a constant at index {dim} of {tensor} and rank variables elsewhere")
                einsum = _replace(einsum, iterative_rank=rank)
            elif einsum.role == "update" and constants:
                raise self.error(einsum.line, "update with a constant output index", str(einsum.output),
                                 "rank variables besides r+1")
            linked.append(einsum)
        seen: dict[str, Einsum] = {}
        for einsum in linked:
            if einsum.name in seen:
                what = "tensor written twice" if einsum.role == "plain" else f"{einsum.output.tensor} initialised twice"
                raise self.error(einsum.line, what, str(einsum.output),
                                 f"one Einsum per tensor (first written on line {seen[einsum.name].line})")
            seen[einsum.name] = einsum
            if einsum.role == "plain" and einsum.output.tensor in iterative_dims:
                raise self.error(einsum.line, "iterative tensor written by a plain Einsum", str(einsum.output),
                                 f"{einsum.output.tensor} written only by its initialisation and its r+1 update")
        for tensor in iterative_dims:
            if f"{tensor}.init" not in seen:
                update = seen[tensor]
                raise self.error(update.line, "iterative tensor has no initialisation", tensor,
                                 f"a line writing {tensor} at iterate 0 (like {tensor}[0, ...] = 0)")
        return linked, iterative_dims

    def recurrence_warnings(self, einsums: list[Einsum], iterative_dims: dict[str, tuple[int, str]]
                            ) -> tuple[str, ...]:
        """A reduction written inside a recurrence update combines the carried term once per reduced
        element (correct Einsum semantics, never what the author meant): one warning per case."""
        found: list[str] = []
        for einsum in einsums:
            if einsum.role != "update" or not einsum.reduced_ranks:
                continue
            tensor = einsum.output.tensor
            for ref in einsum.inputs():
                if ref.tensor != tensor:
                    continue
                for rank in sorted(einsum.reduced_ranks - ref.ranks):
                    found.append(
                        f"{self.source}:{einsum.line}: update {tensor} reduces over {rank} inside the "
                        f"recurrence over {einsum.iterative_rank}, so the carried term {ref} is combined once per "
                        f"element of {rank}; expected the reduction in an Einsum of its own "
                        f"(T[...] = ... :: {einsum.reduce_op} over {rank}, then {tensor} = {ref} + T)")
                break
        return tuple(found)

    # -- tensors and shapes ------------------------------------------------------------------------------
    def validate_tensors(self, einsums: list[Einsum], inputs: list[tuple[str, int]], outputs: list[tuple[str, int]],
                         ranks: dict[str, sympy.Symbol], derived: dict[sympy.Symbol, sympy.Expr],
                         iterative: dict[str, sympy.Expr], iterative_dims: dict[str, tuple[int, str]]
                         ) -> dict[str, tuple[sympy.Expr, ...]]:
        input_names = {n for n, _ in inputs}
        written = {e.output.tensor: e for e in einsums}
        for name, line in inputs:
            if name in written:
                raise self.error(written[name].line, "input tensor written by an Einsum", name,
                                 "inputs to be read only")
        read = set()
        refs: list[tuple[TensorRef, Einsum]] = []
        for einsum in einsums:
            refs.append((einsum.output, einsum))
            for ref in einsum.inputs():
                read.add(ref.tensor)
                if ref.tensor not in written and ref.tensor not in input_names:
                    raise self.error(einsum.line, "unknown tensor", str(ref),
                                     f"an input ({', '.join(n for n, _ in inputs)}) or a tensor written by an Einsum")
                refs.append((ref, einsum))
        for name, line in outputs:
            if name not in written:
                raise self.error(line, "output tensor is never written", name, "a tensor written by an Einsum")
        for name, line in inputs:
            if name not in read:
                raise self.error(line, "input tensor is never read", name, "every input to be used by an Einsum")

        # number of dimensions
        ndim: dict[str, tuple[int, TensorRef, Einsum]] = {}
        for ref, einsum in refs:
            if ref.tensor not in ndim:
                ndim[ref.tensor] = (len(ref.indices), ref, einsum)
            elif ndim[ref.tensor][0] != len(ref.indices):
                count, first, first_einsum = ndim[ref.tensor]
                raise self.error(einsum.line, f"tensor used with {len(ref.indices)} indices", str(ref),
                                 f"{count} indices as in '{first}' on line {first_einsum.line}")

        # iterative dimensions: reads must be at r, r+1 or a constant
        for ref, einsum in refs:
            if ref.tensor in iterative_dims:
                dim, rank = iterative_dims[ref.tensor]
                idx = ref.indices[dim]
                offset = sympy.expand(idx.expr - rank_symbol(rank))
                if idx.ranks and not (idx.ranks == {rank} and offset in (0, 1)):
                    raise self.error(einsum.line, "iterative dimension indexed by an unsupported expression", str(ref),
                                     f"{rank}, {rank}+1 or a constant in dimension {dim} of {ref.tensor}")

        # extents
        shapes: dict[str, list[tuple[sympy.Expr, sympy.Expr, TensorRef, Einsum] | None]] = {}
        for ref, einsum in refs:
            dims = shapes.setdefault(ref.tensor, [None] * len(ref.indices))
            for d, idx in enumerate(ref.indices):
                if ref.tensor in iterative_dims and iterative_dims[ref.tensor][0] == d:
                    rank = iterative_dims[ref.tensor][1]
                    extent = iterative[rank] + 1
                    if dims[d] is None:
                        dims[d] = (extent, _substitute(extent, derived), ref, einsum)
                    continue
                if idx.is_constant:
                    continue
                coefficients, constant = idx.affine()
                extent = 1 + constant + sum(coefficients[r] * (ranks[r] - 1) for r in coefficients)
                full = sympy.simplify(_substitute(extent, derived))
                display = ranks[idx.rank_var] if idx.rank_var is not None else full
                if dims[d] is None:
                    dims[d] = (display, full, ref, einsum)
                    continue
                known_display, known_full, known_ref, known_einsum = dims[d]
                if sympy.simplify(known_full - full) != 0:
                    raise self.error(einsum.line, "tensor dimension used with two different shapes", str(ref),
                                     f"dimension {d} of {ref.tensor} to have shape {known_display} as in "
                                     f"'{known_ref}' on line {known_einsum.line} (here {display})")
                if idx.rank_var is not None and not isinstance(known_display, sympy.Symbol):
                    dims[d] = (display, full, ref, einsum)  # prefer a rank's own shape symbol for display
        tensor_shapes: dict[str, tuple[sympy.Expr, ...]] = {}
        ordered = [n for n, _ in inputs] + [e.output.tensor for e in einsums]
        for tensor, dims in sorted(shapes.items(), key=lambda item: ordered.index(item[0])):
            for d, entry in enumerate(dims):
                if entry is None:
                    einsum = next(e for r, e in refs if r.tensor == tensor)
                    raise self.error(einsum.line, "cannot infer a dimension's extent (only constant indices)",
                                     tensor, f"dimension {d} of {tensor} indexed by a rank variable somewhere")
            tensor_shapes[tensor] = tuple(entry[0] for entry in dims)
        return tensor_shapes

    def load_meta(self, nodes: dict[str, tuple[yaml.Node, yaml.Node]], data: dict, shape_names: set[str]) -> dict:
        meta: dict = {}
        if "meta" in nodes:
            if not isinstance(data.get("meta"), dict):
                raise self.error(self.key_line["meta"], "meta must be a mapping", "meta", "a mapping")
            meta.update(data["meta"])
        if "pass_rank" in nodes:
            value = self.scalar(nodes["pass_rank"][1], "pass_rank")
            if value not in shape_names:
                raise self.error(self.key_line["pass_rank"], "pass_rank is not a shape symbol", value,
                                 f"one of {', '.join(sorted(shape_names))}")
            meta["pass_rank"] = value
        if "closed_form" in nodes:
            meta["closed_form"] = self.scalar(nodes["closed_form"][1], "closed_form")
        if "reference" in nodes:
            meta["reference"] = self.scalar(nodes["reference"][1], "reference")
        if "tolerance" in nodes:
            value = data.get("tolerance")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
                raise self.error(self.key_line["tolerance"], "tolerance must be a number in (0, 1)", value,
                                 "the largest normwise relative error check accepts, like 1e-10")
            meta["tolerance"] = float(value)
        if "attention" in nodes:
            attention = data.get("attention")
            line = self.key_line["attention"]
            if not isinstance(attention, dict) or set(attention) - {"algorithm", "causal"}:
                raise self.error(line, "attention must be a mapping of algorithm and causal", "attention",
                                 "{algorithm: 3pass|2pass|1pass|fusemax, causal: true|false}")
            algorithm = str(attention.get("algorithm"))
            if algorithm not in ATTENTION_ALGORITHMS:
                raise self.error(line, "unknown attention algorithm", algorithm,
                                 f"one of {', '.join(ATTENTION_ALGORITHMS)}")
            causal = attention.get("causal", False)
            if not isinstance(causal, bool):
                raise self.error(line, "attention.causal must be true or false", causal, "true or false")
            meta["attention"] = {"algorithm": algorithm, "causal": causal}
        return meta


def _substitute(expr: sympy.Expr, derived: dict[sympy.Symbol, sympy.Expr]) -> sympy.Expr:
    """``expr`` with derived shape symbols replaced by their definitions (recursively)."""
    for _ in range(len(derived) + 1):
        replaced = expr.subs(derived)
        if replaced == expr:
            return expr
        expr = replaced
    return expr


def _replace(einsum: Einsum, **changes: Any) -> Einsum:
    from dataclasses import replace
    return replace(einsum, **changes)


def build_graph(einsums: list[Einsum], iterative_dims: dict[str, tuple[int, str]]) -> networkx.DiGraph:
    """The bipartite tensor/Einsum graph described in einsum_ir.model."""
    graph = networkx.DiGraph()
    for einsum in einsums:
        node = Cascade.einsum_node(einsum.name)
        graph.add_node(node, kind="einsum", name=einsum.name, einsum=einsum)
        out = Cascade.tensor_node(einsum.output.tensor)
        graph.add_node(out, kind="tensor", name=einsum.output.tensor)
        graph.add_edge(node, out, ref=einsum.output)
        by_tensor: dict[str, list[TensorRef]] = {}
        for ref in einsum.inputs():
            by_tensor.setdefault(ref.tensor, []).append(ref)
        for tensor, tensor_refs in by_tensor.items():
            source = Cascade.tensor_node(tensor)
            graph.add_node(source, kind="tensor", name=tensor)
            previous = tensor in iterative_dims and all(
                r.indices[iterative_dims[tensor][0]].rank_var == iterative_dims[tensor][1] for r in tensor_refs)
            graph.add_edge(source, node, ref=tensor_refs[0], refs=tuple(tensor_refs), previous_iterate=previous)
    return graph
