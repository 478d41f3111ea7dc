"""Tokenizer and recursive-descent parser for one Einsum line (grammar: docs/einsum-syntax.md).

::

    line    := lhs '=' value [ '::' NAME [ 'over' RANK {',' RANK} ] ] [ 'where' cond { 'and' cond } ]
    lhs     := TENSOR [ '[' [ index {',' index} ] ']' ]
    value   := expr [ CMP expr ]                  (1 where the comparison holds, else 0)
    expr    := term { ('+' | '-') term }
    term    := unary { ('*' | '/') unary }
    unary   := '-' unary | primary
    primary := NUMBER | 'inf' | SHAPE | FUNC '(' value {',' value} ')' | TENSOR [ '[' ... ']' ] | '(' value ')'
    index   := affine expression of rank variables, shape symbols and integers (+ - * / parentheses)
    cond    := index CMP index                    (an index filter)
             | expr CMP expr                      (a value filter: names a tensor; a rank is its coordinate)
    CMP     := '<' | '<=' | '>' | '>=' | '==' | '!='

An output index may also be blocked (``t*B + i``, covering its extent exactly once).

The parser knows the declared rank variables and shape symbols, and the registered functions and
reduce operators (einsum_ir.functions), so a registered function is accepted with no parser change.
Every error is a one-line CascadeError naming file, line and the offending token.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import sympy

from attnsim.einsum_ir import functions
from attnsim.einsum_ir.arith import compile_arithmetic
from attnsim.einsum_ir.errors import CascadeError, cascade_error
from attnsim.einsum_ir.model import (BinOp, Call, Compare, Const, Einsum, Expr, Filter, IndexExpr, Neg, RankValue,
                                     Size, TensorRef, ValueFilter, expr_tensor_refs, rank_symbol, shape_symbol)

_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op>::|<=|>=|==|!=|[-+*/()\[\],=<>])
""", re.VERBOSE)

COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
END = "end of line"


@dataclass(frozen=True)
class Token:
    """One lexical token: ``kind`` is ``number``, ``ident``, ``op`` or ``end``."""

    kind: str
    text: str


def strip_comment(text: str) -> str:
    """The line without its ``#`` comment and surrounding blanks."""
    return text.split("#", 1)[0].strip()


class _Context:
    """What a line is parsed against: file and line for errors, declared ranks and shapes."""

    def __init__(self, source: str, line: int, ranks: Mapping[str, object], shapes: set[str], *,
                 local_functions: Mapping[str, functions.MapFunction] | None = None,
                 local_reduce_ops: Mapping[str, functions.ReduceOp] | None = None,
                 params: tuple[str, ...] | None = None):
        self.source = source
        self.line = line
        self.ranks = set(ranks)
        self.shapes = set(shapes)
        self.local_functions = dict(local_functions or {})
        self.local_reduce_ops = dict(local_reduce_ops or {})
        self.params = params  # the arguments, when parsing a function definition (no tensors, no ranks)

    def error(self, what: str, token: str, expected: str) -> CascadeError:
        return cascade_error(self.source, self.line, what, token, expected)


def tokenize(text: str, ctx: _Context) -> list[Token]:
    """Split ``text`` (no comment) into tokens, ending with an ``end`` token."""
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if match is None:
            raise ctx.error("unexpected character", text[position],
                            "a name, number or one of + - * / ( ) [ ] , = :: < <= > >= == !=")
        position = match.end()
        kind = match.lastgroup
        if kind != "ws":
            tokens.append(Token(kind, match.group()))
    tokens.append(Token("end", END))
    return tokens


class _Parser:
    """Recursive descent over the tokens of one line."""

    def __init__(self, tokens: list[Token], ctx: _Context):
        self.tokens = tokens
        self.position = 0
        self.ctx = ctx
        self.ranks_seen: list[str] = []  # rank variables in the order their tokens were read
        self.rank_values = False  # True while parsing a value filter: a rank variable is its coordinate

    # -- token helpers -------------------------------------------------------------------------------
    @property
    def current(self) -> Token:
        return self.tokens[self.position]

    def advance(self) -> Token:
        token = self.tokens[self.position]
        if token.kind != "end":
            self.position += 1
        return token

    def accept(self, text: str) -> bool:
        if self.current.text == text and self.current.kind in ("op", "ident"):
            self.advance()
            return True
        return False

    def expect(self, text: str, expected: str | None = None) -> Token:
        if self.current.text == text and self.current.kind in ("op", "ident"):
            return self.advance()
        raise self.ctx.error("malformed Einsum", self.current.text, expected or f"'{text}'")

    # -- index (affine) expressions ------------------------------------------------------------------
    def index_sum(self) -> sympy.Expr:
        value = self.index_term()
        while self.current.text in ("+", "-") and self.current.kind == "op":
            op = self.advance().text
            right = self.index_term()
            value = value + right if op == "+" else value - right
        return value

    def index_term(self) -> sympy.Expr:
        value = self.index_factor()
        while self.current.text in ("*", "/") and self.current.kind == "op":
            op = self.advance().text
            right = self.index_factor()
            value = value * right if op == "*" else value / right
        return value

    def index_factor(self) -> sympy.Expr:
        token = self.current
        if token.text == "-" and token.kind == "op":
            self.advance()
            return -self.index_factor()
        if token.text == "(" and token.kind == "op":
            self.advance()
            value = self.index_sum()
            self.expect(")", "')' closing the index expression")
            return value
        if token.kind == "number":
            self.advance()
            if not re.fullmatch(r"\d+", token.text):
                raise self.ctx.error("non-integer number in an index", token.text, "an integer")
            return sympy.Integer(int(token.text))
        if token.kind == "ident":
            self.advance()
            if token.text in self.ctx.ranks:
                self.ranks_seen.append(token.text)
                return rank_symbol(token.text)
            if token.text in self.ctx.shapes:
                return shape_symbol(token.text)
            if self.current.text == "[" and self.current.kind == "op":
                raise self.ctx.error(
                    "gather (a tensor read used as an index) is outside the language", token.text,
                    "indices affine in rank variables; select with a value filter instead, like "
                    f"'G[f,p] = V[f,m] where m == {token.text}[p]'")
            raise self.ctx.error("unknown rank variable", token.text,
                                 f"one of the declared ranks {', '.join(sorted(self.ctx.ranks))} "
                                 f"or shape symbols {', '.join(sorted(self.ctx.shapes))}")
        raise self.ctx.error("malformed index", token.text, "a rank variable, shape symbol, integer or '('")

    def index(self, token_text: str) -> IndexExpr:
        start = self.position
        expr = sympy.expand(self.index_sum())
        text = " ".join(t.text for t in self.tokens[start:self.position]) or token_text
        ranks = frozenset(s.name for s in expr.free_symbols if s.name in self.ctx.ranks and s == rank_symbol(s.name))
        if ranks:
            try:
                poly = sympy.Poly(expr, *[rank_symbol(r) for r in sorted(ranks)])
            except sympy.PolynomialError:
                poly = None
            if poly is None or poly.total_degree() > 1 or any(
                    c.free_symbols & {rank_symbol(r) for r in ranks} for c in poly.coeffs()):
                raise self.ctx.error("index is not affine in the rank variables", text,
                                     "a sum of rank variables times constants (like m1*M0 + m0)")
        return IndexExpr(expr=expr, ranks=ranks)

    def bracket_indices(self, tensor: str) -> tuple[IndexExpr, ...]:
        if not self.accept("["):
            return ()
        indices: list[IndexExpr] = []
        if self.accept("]"):
            return ()
        while True:
            indices.append(self.index(tensor))
            if self.accept(","):
                continue
            self.expect("]", f"',' or ']' in the indices of {tensor}")
            return tuple(indices)

    # -- value expressions ---------------------------------------------------------------------------
    def value(self) -> Expr:
        """``sum [CMP sum]``: a comparison yields 1 where it holds, 0 elsewhere (non-associative)."""
        left = self.expr()
        if self.current.kind == "op" and self.current.text in COMPARISONS:
            op = self.advance().text
            right = self.expr()
            if self.current.kind == "op" and self.current.text in COMPARISONS:
                raise self.ctx.error("chained comparison", self.current.text,
                                     "one comparison per operand; parenthesise, like (a < b) * (b < c)")
            return Compare(op, left, right)
        return left

    def expr(self) -> Expr:
        value = self.term()
        while self.current.text in ("+", "-") and self.current.kind == "op":
            op = self.advance().text
            value = BinOp(op, value, self.term())
        return value

    def term(self) -> Expr:
        value = self.unary()
        while self.current.text in ("*", "/") and self.current.kind == "op":
            op = self.advance().text
            value = BinOp(op, value, self.unary())
        return value

    def unary(self) -> Expr:
        if self.current.text == "-" and self.current.kind == "op":
            self.advance()
            arg = self.unary()
            return Const(-arg.value) if isinstance(arg, Const) else Neg(arg)
        return self.primary()

    def primary(self) -> Expr:
        token = self.current
        if token.kind == "number":
            self.advance()
            return Const(float(token.text))
        if token.kind == "op" and token.text == "(":
            self.advance()
            value = self.value()
            self.expect(")", "')' closing the parenthesis")
            return value
        if token.kind == "ident":
            if token.text == "inf":
                self.advance()
                return Const(math.inf)
            if token.text in functions.RESERVED_WORDS:
                raise self.ctx.error("malformed Einsum", token.text, "an expression")
            self.advance()
            if self.current.text == "(" and self.current.kind == "op":
                return self.call(token)
            if self.ctx.params is not None:
                if token.text not in self.ctx.params:
                    raise self.ctx.error("unknown name in a function definition", token.text,
                                         f"one of its arguments ({', '.join(self.ctx.params)}), a number, "
                                         "or a function call")
                return TensorRef(token.text, ())
            if token.text in self.ctx.ranks:
                if self.rank_values:
                    self.ranks_seen.append(token.text)
                    return RankValue(token.text)
                raise self.ctx.error("rank variable used as a value", token.text,
                                     "a tensor reference like T[...] (a coordinate is a value only in a "
                                     "value filter, like 'where m == IDX[p]')")
            is_ref = self.current.text == "[" and self.current.kind == "op"
            if token.text in self.ctx.shapes and not is_ref:
                return Size(token.text)
            return TensorRef(token.text, self.bracket_indices(token.text))
        raise self.ctx.error("malformed Einsum", token.text, "an expression (a number, tensor, function call or '(')")

    def call(self, name: Token) -> Call:
        entry = functions.get_function(name.text, self.ctx.local_functions)
        if entry is None:
            raise self.ctx.error("unknown function", name.text,
                                 f"a built-in, registered or declared function "
                                 f"({', '.join(functions.function_names(self.ctx.local_functions))})")
        self.expect("(")
        args: list[Expr] = [self.value()]
        while self.accept(","):
            args.append(self.value())
        self.expect(")", f"',' or ')' in the call of {name.text}")
        if len(args) != entry.arity:
            raise self.ctx.error(f"{name.text} takes {entry.arity} argument(s), got {len(args)}", name.text,
                                 f"{entry.arity} argument(s)")
        return Call(name.text, tuple(args))

    def _is_value_condition(self) -> bool:
        """True when the condition up to the next 'and' reads a tensor (``T[...]``), calls a function or
        has a non-integer number (a filter on values); otherwise it is an index filter."""
        depth = 0
        tokens = self.tokens[self.position:]
        for token, after in zip(tokens, tokens[1:] + [Token("end", END)]):
            if token.kind == "end" or (depth == 0 and token.kind == "ident" and token.text == "and"):
                return False
            if token.kind == "op" and token.text in "([":
                depth += 1
            elif token.kind == "op" and token.text in ")]":
                depth -= 1
            elif token.kind == "number" and not re.fullmatch(r"\d+", token.text):
                return True
            elif (token.kind == "ident" and token.text not in self.ctx.ranks and token.text not in self.ctx.shapes
                  and after.kind == "op" and after.text in ("[", "(")):
                return True
        return False

    def condition(self) -> Filter | ValueFilter:
        if self._is_value_condition():
            self.rank_values = True
            try:
                lhs_value = self.expr()
                op = self.current
                if op.kind != "op" or op.text not in COMPARISONS:
                    raise self.ctx.error("malformed filter", op.text, f"a comparison ({' '.join(COMPARISONS)})")
                self.advance()
                rhs_value = self.expr()
            finally:
                self.rank_values = False
            return ValueFilter(lhs=lhs_value, op=op.text, rhs=rhs_value)
        lhs = self.index("where")
        op = self.current
        if op.kind != "op" or op.text not in COMPARISONS:
            raise self.ctx.error("malformed filter", op.text, f"a comparison ({' '.join(COMPARISONS)})")
        self.advance()
        rhs = self.index("where")
        return Filter(lhs=lhs.expr, op=op.text, rhs=rhs.expr)


def _blocked_order(index: IndexExpr, ranks: Mapping[str, object]) -> tuple[str, ...] | None:
    """The ranks of a blocked output index (``t*B + i``), slowest first, when it covers its extent
    exactly once: no constant, the fastest rank has coefficient 1 and each next coefficient is the
    previous coefficient times the previous rank's shape. None otherwise."""
    if len(index.ranks) < 2:
        return None
    coefficients, constant = index.affine()
    if constant != 0:
        return None
    remaining = dict(coefficients)
    stride: sympy.Expr = sympy.Integer(1)
    order: list[str] = []
    while remaining:
        match = next((r for r, c in remaining.items() if sympy.simplify(c - stride) == 0), None)
        shape = ranks.get(match) if match is not None else None
        if match is None or shape is None:
            return None
        order.append(match)
        stride = stride * (shape if isinstance(shape, sympy.Expr) else shape_symbol(str(shape)))
        del remaining[match]
    return tuple(reversed(order))


def _first_seen(*groups: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    seen: list[str] = []
    for group in groups:
        for rank in group:
            if rank not in seen:
                seen.append(rank)
    return tuple(seen)


def parse_einsum(text: str, ranks: Mapping[str, object], shapes: set[str] | frozenset[str] = frozenset(), *,
                 iterative: Mapping[str, object] | None = None, line: int = 1,
                 source: str = "<string>",
                 local_functions: Mapping[str, functions.MapFunction] | None = None,
                 local_reduce_ops: Mapping[str, functions.ReduceOp] | None = None) -> Einsum:
    """Parse one Einsum line (``#`` comments allowed) into an :class:`Einsum`.

    ``ranks`` names the declared rank variables (a mapping rank -> shape, only keys are used here);
    ``shapes`` the shape symbols (the values of ``ranks`` are added); ``iterative`` the iterative
    ranks; ``local_functions`` / ``local_reduce_ops`` those declared in the cascade file. The role is ``"update"`` when the output is indexed at ``r+1`` for an iterative ``r``,
    ``"init"`` when some output index is a constant, ``"plain"`` otherwise; a cascade fixes
    ``iterative_rank`` of init lines when it links them to their update.
    """
    iterative = dict(iterative or {})
    shape_names = set(shapes) | {str(v) for v in ranks.values() if v is not None}
    ctx = _Context(source, line, ranks, shape_names, local_functions=local_functions,
                   local_reduce_ops=local_reduce_ops)
    body = strip_comment(text)
    if not body:
        raise ctx.error("empty Einsum", text.strip() or END, "an Einsum like T[i] = A[i] * B[i]")
    parser = _Parser(tokenize(body, ctx), ctx)

    name_token = parser.current
    if name_token.kind != "ident" or name_token.text in functions.RESERVED_WORDS or name_token.text == "inf":
        raise ctx.error("malformed Einsum", name_token.text, "an output tensor name")
    if name_token.text in ctx.ranks or name_token.text in ctx.shapes:
        raise ctx.error("output is a rank variable or shape symbol, not a tensor", name_token.text, "a tensor name")
    parser.advance()
    output = TensorRef(name_token.text, parser.bracket_indices(name_token.text))
    parser.expect("=", "'=' after the output tensor")
    seen_before_expr = len(parser.ranks_seen)
    expr = parser.value()
    expr_rank_tokens = parser.ranks_seen[seen_before_expr:]

    reduce_name: str | None = None
    over: tuple[str, ...] | None = None
    reduce_token = "::"
    if parser.accept("::"):
        token = parser.current
        known_ops = ", ".join(functions.reduce_op_names(ctx.local_reduce_ops))
        if token.kind != "ident":
            raise ctx.error("malformed reduction", token.text, f"a reduce operator ({known_ops})")
        parser.advance()
        if functions.get_reduce_op(token.text, ctx.local_reduce_ops) is None:
            raise ctx.error("unknown reduce operator", token.text, f"one of {known_ops}")
        reduce_name = reduce_token = token.text
        if parser.accept("over"):
            names = []
            while True:
                rank_token = parser.current
                if rank_token.kind != "ident" or rank_token.text not in ctx.ranks:
                    raise ctx.error("unknown rank variable", rank_token.text,
                                    f"one of the declared ranks {', '.join(sorted(ctx.ranks))}")
                parser.advance()
                names.append(rank_token.text)
                if not parser.accept(","):
                    break
            over = tuple(names)

    filters: list[Filter | ValueFilter] = []
    if parser.accept("where"):
        filters.append(parser.condition())
        while parser.accept("and"):
            filters.append(parser.condition())
    if parser.current.kind != "end":
        raise ctx.error("malformed Einsum", parser.current.text,
                        "an operator, '::' reduction, 'where' filter or the end of the line")

    # -- output indices and role -----------------------------------------------------------------------
    role, iterative_rank = "plain", None
    output_ranks: list[str] = []
    for index in output.indices:
        rank = index.rank_var
        if rank is not None:
            if rank in output_ranks:
                raise ctx.error("rank variable repeated in the output", f"{output}", "distinct rank variables")
            output_ranks.append(rank)
            continue
        if index.is_constant:
            if role == "plain":
                role = "init"
            continue
        (only_rank,) = index.ranks if len(index.ranks) == 1 else (None,)
        if only_rank is not None and sympy.simplify(index.expr - rank_symbol(only_rank) - 1) == 0:
            if only_rank not in iterative:
                raise ctx.error("output indexed at r+1 but the rank is not iterative", str(output),
                                f"an iterative rank ({', '.join(sorted(iterative)) or 'none declared'})")
            if only_rank in output_ranks:
                raise ctx.error("rank variable repeated in the output", str(output), "distinct rank variables")
            role, iterative_rank = "update", only_rank
            output_ranks.append(only_rank)
            continue
        blocked = _blocked_order(index, ranks)
        if blocked is None:
            raise ctx.error("output index must be a rank variable", str(output),
                            "a rank variable, r+1 for an iterative rank r, a constant, or a blocked index "
                            "covering its rank exactly once (t*B + i with i of shape B)")
        for rank in blocked:
            if rank in output_ranks:
                raise ctx.error("rank variable repeated in the output", str(output), "distinct rank variables")
            output_ranks.append(rank)
    if role == "init" and iterative_rank is None and len(iterative) == 1 and any(
            i.is_constant for i in output.indices):
        iterative_rank = next(iter(iterative))

    expr_ranks = tuple(r for r in _first_seen(expr_rank_tokens)
                       if any(r in ref.ranks for ref in expr_tensor_refs(expr)))
    value_filter_ranks = tuple(r for r in _first_seen(parser.ranks_seen)
                               if any(r in f.ranks for f in filters if isinstance(f, ValueFilter)))
    expr_ranks = _first_seen(expr_ranks, value_filter_ranks)
    iteration_ranks = _first_seen(output_ranks, expr_ranks)
    reduced = frozenset(r for r in expr_ranks if r not in output_ranks)
    if reduce_name is not None and functions.get_reduce_op(reduce_name, ctx.local_reduce_ops).index and \
            len(reduced) != 1:
        raise ctx.error(f"{reduce_name} reduces {len(reduced)} ranks", reduce_name,
                        f"exactly one reduced rank (its coordinate is the result; here "
                        f"{', '.join(sorted(reduced)) or 'none'})")
    for condition in filters:
        if isinstance(condition, ValueFilter):
            continue
        missing = sorted(condition.ranks - set(iteration_ranks))
        if missing:
            raise ctx.error("filter uses a rank outside the Einsum's iteration space", str(condition),
                            f"ranks among {', '.join(iteration_ranks) or 'none'}")
    if reduce_name is not None and not reduced:
        raise ctx.error("reduction given but no rank is reduced", reduce_token,
                        "a rank in the expression that is not in the output")
    if over is not None and frozenset(over) != reduced:
        raise ctx.error("'over' ranks differ from the reduced ranks", ", ".join(over),
                        f"over {', '.join(sorted(reduced)) or 'nothing'} (ranks read but not written)")
    reduce_op = (reduce_name or "sum") if reduced else None
    name = f"{output.tensor}.init" if role == "init" else output.tensor
    return Einsum(name=name, output=output, expr=expr, reduce_op=reduce_op, reduced_ranks=reduced,
                  iteration_ranks=iteration_ranks, filters=tuple(filters), role=role,
                  iterative_rank=iterative_rank, line=line, source=body)


def parse_function_body(text: str, params: tuple[str, ...], *, line: int, source: str,
                        local_functions: Mapping[str, functions.MapFunction] | None = None) -> Expr:
    """Parse the expression of a function definition (``x * tanh(softplus(x))``) over ``params``.

    The grammar is the Einsum expression grammar with the arguments as the only names: numbers,
    ``inf``, ``+ - * /``, parentheses and calls of built-in, registered or ``local_functions``.
    """
    ctx = _Context(source, line, {}, set(), local_functions=local_functions, params=tuple(params))
    body = str(text).strip()
    if not body:
        raise ctx.error("empty function definition", str(text) or END, "an expression of its arguments")
    parser = _Parser(tokenize(body, ctx), ctx)
    expr = parser.expr()
    if parser.current.kind != "end":
        raise ctx.error("malformed function definition", parser.current.text,
                        "an operator or the end of the expression")
    return expr


def function_body_names(text: str) -> tuple[str, ...]:
    """Names in a definition that are not called (the implicit arguments), in first-seen order."""
    names: list[str] = []
    tokens = [m for m in _TOKEN_RE.finditer(str(text)) if m.lastgroup != "ws"]
    for i, match in enumerate(tokens):
        if match.lastgroup != "ident" or match.group() in functions.RESERVED_WORDS:
            continue
        called = i + 1 < len(tokens) and tokens[i + 1].group() == "("
        if not called and match.group() not in names:
            names.append(match.group())
    return tuple(names)


def parse_shape_expr(text: str, shapes: set[str], *, line: int, source: str,
                     ranks: set[str] | None = None) -> sympy.Expr:
    """Parse a derived shape: arithmetic of shape symbols and integers (``M / M0``, ``ceiling(M / 7)``).

    Read by the one arithmetic evaluator of attnsim (:mod:`einsum_ir.arith`, the grammar of mapping tiles
    and study ``derived:`` entries too) and returned as a sympy expression of the shape symbols.
    ``ranks`` is accepted for the callers that pass it; a rank variable is not a shape and is refused.
    """
    ctx = _Context(source, line, ranks or set(), shapes)
    body = str(text).strip()
    if not body:
        raise ctx.error("empty shape expression", str(text), "an expression of shape symbols like M / M0")
    try:
        expression = compile_arithmetic(body, {name: name for name in shapes})
    except ValueError as exc:
        raise ctx.error("malformed shape expression", body, f"arithmetic of shape symbols and integers: {exc}") \
            from None
    value = sympy.sympify(expression.to_sympy({name: shape_symbol(name) for name in expression.names}))
    if value.atoms(sympy.Float):
        raise ctx.error("non-integer number in a shape expression", body, "integers and shape symbols")
    return value


def parse_stop_condition(text: str, rank: str, ranks: set[str], shapes: set[str], *, line: int,
                         source: str) -> sympy.Expr:
    """Parse ``"m1 >= M1"`` for iterative rank ``m1``; returns the stop bound (``M1``)."""
    ctx = _Context(source, line, ranks, shapes)
    parser = _Parser(tokenize(str(text).strip(), ctx), ctx)
    first = parser.current
    if first.kind != "ident" or first.text != rank:
        raise ctx.error("malformed stopping condition", first.text, f"'{rank} >= BOUND'")
    parser.advance()
    parser.expect(">=", f"'>=' in '{rank} >= BOUND'")
    start = parser.position
    bound = parser.index_sum()
    if parser.current.kind != "end":
        raise ctx.error("malformed stopping condition", parser.current.text, "the end of the condition")
    used_ranks = {s.name for s in bound.free_symbols if s == rank_symbol(s.name)}
    if used_ranks:
        token = " ".join(t.text for t in parser.tokens[start:parser.position])
        raise ctx.error("stop bound uses a rank variable", token, "an expression of shape symbols")
    return bound
