"""Typed functions of x and y as :class:`~optimlab.lab.surfaces.Surface` objects, safely.

``parse_surface("(1 - x)^2 + 100*(y - x^2)^2")`` returns a Surface with the exact value,
gradient and Hessian of what was typed. Nothing the user types is ever run as code:

1. a lexical gate admits only ASCII digits, letters, ``_``, blanks, ``+ - * / ^ ( ) , .``
   (``.`` inside numbers only); ``^`` is rewritten to ``**`` *before* parsing, so it has the
   precedence of a power (Python's own ``^`` would make ``x^2 + 1`` mean ``x ^ (2 + 1)``);
2. Python's parser (``ast.parse(text, mode="eval")``, which never evaluates) gives a tree whose
   nodes must be on a whitelist: numbers, the names x, y, pi, e, the operators
   ``+ - * / **``, unary ``+ -`` and calls of :data:`FUNCTIONS`;
3. the tree becomes an interned DAG (equal subexpressions are one node) whose constant parts
   are folded in float64 (``9^9^9^9`` overflows to inf and is refused; no exact integer is
   ever raised to a power);
4. the gradient and Hessian are symbolic derivatives of that DAG (forward mode, one new node per
   node and variable, the rules of calculus below), so their size is linear in the input;
5. each of f, grad f and the Hessian is compiled once into a tape of NumPy ufunc calls over
   registers (a closure with a fixed step list: no code generation, no ``eval``/``exec``/
   ``compile``/``lambdify``); a shared subexpression is computed once per evaluation.

Derivative rules (u, v subexpressions, ' the derivative in x or y)::

    (u + v)' = u' + v'        (u v)' = u' v + u v'         (u / v)' = (u' - (u/v) v') / v
    (u^c)' = c u^(c-1) u'     (c^v)' = c^v log(c) v'       (u^v)' = u^v (v' log u + v u' / u)
    exp' = exp u'   log' = u'/u   log10' = u'/(u ln 10)   sqrt' = u'/(2 sqrt u)
    cbrt' = u'/(3 cbrt(u)^2)   sin' = cos u'   cos' = -sin u'   tan' = (1 + tan^2) u'
    sinh' = cosh u'   cosh' = sinh u'   tanh' = (1 - tanh^2) u'   asin' = u'/sqrt(1 - u^2)
    acos' = -u'/sqrt(1 - u^2)   atan' = u'/(1 + u^2)   atan2(u, v)' = (v u' - u v')/(u^2 + v^2)
    abs' = sign(u) u'   sign' = 0 (almost everywhere)

Simplifications applied while building (the same as a computer algebra system's automatic
ones): u + 0 = u, u - u = 0, u * 1 = u, u * 0 = 0, u / u = 1, u^1 = u, u^0 = 1, -(-u) = u,
|u|^2k = u^2k, constants folded; so x/x is 1 even at x = 0, as in sympy. Where the argument of
abs is exactly 0 the derivatives use sign(0) = 0 (abs has no derivative there).

Evaluation follows NumPy: log(x) at x = -1 is nan, 1/x at x = 0 is inf, and no warning or
exception is raised. (A constant part that is not a finite real number, such as a typed
``log(-1)`` or ``1/0``, is refused when parsing.)

Limits, so that every accepted text parses and differentiates in milliseconds (the worst
found: about 15 ms) and a gradient costs at most :data:`MAX_GRADIENT_COST` ufunc calls:
:data:`MAX_CHARACTERS` non-blank characters (:data:`MAX_LENGTH` in all), :data:`MAX_NODES`
syntax-tree parts, :data:`MAX_DEPTH` levels of nesting, :data:`MAX_DAG_NODES` distinct
subexpressions in f and its derivatives. (``sympy.diff`` is not used: on inputs this small it
takes seconds, e.g. 1.3 s for the Hessian of sin applied 50 times and 0.25 s for a nesting
of depth 4, because it expands the derivative as a tree.)

Errors are :class:`ExpressionError` (a ValueError) with ``position``, the 0-based character
offset of the fault in the text given (None when it has none).

    >>> s = parse_surface("x^2 + 10*y^2")
    >>> s.gradient([[1.0, 1.0]])
    array([[ 2., 20.]])
"""

from __future__ import annotations

import ast
import functools
import math
import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..lab.surfaces import Surface

__all__ = [
    "DEFAULT_DOMAIN",
    "FUNCTIONS",
    "MAX_CHARACTERS",
    "MAX_DAG_NODES",
    "MAX_DEPTH",
    "MAX_GRADIENT_COST",
    "MAX_LENGTH",
    "MAX_NODES",
    "NAMES",
    "Expression",
    "ExpressionError",
    "parse_expression",
    "parse_surface",
]

#: at most this many non-blank characters in a typed function
MAX_CHARACTERS = 300
#: at most this many characters in all (blanks included)
MAX_LENGTH = 1000
#: at most this many parts (numbers, names, operations, calls) in its syntax tree
MAX_NODES = 200
#: at most this many levels of nesting in its syntax tree
MAX_DEPTH = 100
#: at most this many distinct subexpressions in f, its gradient and its Hessian together
MAX_DAG_NODES = 20_000
#: at most this many ufunc calls in one evaluation of the gradient
MAX_GRADIENT_COST = 1000
#: the largest |bound| of a domain and |coordinate| of a start
MAX_BOUND = 1e6
DEFAULT_DOMAIN = ((-3.0, 3.0), (-3.0, 3.0))

#: the variables and constants a typed function may name
NAMES = ("x", "y", "pi", "e")
_CONSTANTS = {"pi": math.pi, "e": math.e}

#: name typed -> (operation, number of arguments); aliases share the operation
FUNCTIONS: dict[str, tuple[str, int]] = {
    "sin": ("sin", 1),
    "cos": ("cos", 1),
    "tan": ("tan", 1),
    "asin": ("asin", 1),
    "arcsin": ("asin", 1),
    "acos": ("acos", 1),
    "arccos": ("acos", 1),
    "atan": ("atan", 1),
    "arctan": ("atan", 1),
    "atan2": ("atan2", 2),
    "arctan2": ("atan2", 2),
    "sinh": ("sinh", 1),
    "cosh": ("cosh", 1),
    "tanh": ("tanh", 1),
    "exp": ("exp", 1),
    "log": ("log", 1),
    "ln": ("log", 1),
    "log10": ("log10", 1),
    "sqrt": ("sqrt", 1),
    "cbrt": ("cbrt", 1),
    "abs": ("abs", 1),
    "sign": ("sign", 1),
}

_UFUNCS: dict[str, Callable] = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "pow": np.power,
    "neg": np.negative,
    "square": np.square,
    "reciprocal": np.reciprocal,
    "atan2": np.arctan2,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "exp": np.exp,
    "log": np.log,
    "log10": np.log10,
    "sqrt": np.sqrt,
    "cbrt": np.cbrt,
    "abs": np.abs,
    "sign": np.sign,
}
_COMMUTATIVE = frozenset({"add", "mul"})

_ALLOWED = (
    "allowed: numbers, x, y, pi, e, + - * / ^ (or **), parentheses and the functions "
    + ", ".join(sorted(FUNCTIONS))
)

# characters refused by the lexical gate, with what they would have meant
_HINTS = {
    "[": "subscripts and lists are not allowed",
    "]": "subscripts and lists are not allowed",
    "{": "sets and dicts are not allowed",
    "}": "sets and dicts are not allowed",
    "'": "strings are not allowed",
    '"': "strings are not allowed",
    "=": "assignments, keywords and comparisons are not allowed",
    "<": "comparisons and shifts are not allowed",
    ">": "comparisons and shifts are not allowed",
    "!": "comparisons are not allowed",
    ":": "lambdas, slices and := are not allowed",
    ";": "only one expression is allowed",
    "@": "matrix products and decorators are not allowed",
    "%": "the remainder operator is not allowed",
    "&": "bit operations are not allowed",
    "|": "bit operations are not allowed",
    "~": "bit operations are not allowed",
    "#": "comments are not allowed",
    "\\": "backslashes are not allowed",
    "\n": "the function must fit on one line",
    "\r": "the function must fit on one line",
    ".": "attribute access is not allowed ('.' belongs inside numbers only)",
    "\u03c0": "write pi",
    "\u00b2": "write ^2",
    "\u00b3": "write ^3",
    "\u00d7": "write *",
    "\u00b7": "write *",
    "\u2212": "write -",
}
_NODE_NAMES = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscript",
    ast.Lambda: "lambda",
    ast.IfExp: "conditional expression (if ... else ...)",
    ast.BoolOp: "'and'/'or'",
    ast.Compare: "comparison",
    ast.Tuple: "tuple (a, b)",
    ast.List: "list",
    ast.Set: "set",
    ast.Dict: "dict",
    ast.Starred: "'*' unpacking",
    ast.NamedExpr: "':=' assignment",
    ast.Await: "'await'",
    ast.GeneratorExp: "generator expression",
    ast.JoinedStr: "f-string",
}
_BINARY = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow"}


class ExpressionError(ValueError):
    """A typed function that is refused: ``position`` is the 0-based character offset of the
    fault in the text (None when the fault has no place, e.g. a text too long)."""

    def __init__(self, message: str, position: int | None = None):
        super().__init__(message)
        self.position = position


def _error(
    subject: str, position: int | None, problem: str = "", allowed: bool = True
) -> ExpressionError:
    """``expression: <subject> at position <p><problem>; allowed: ...`` as an error."""
    where = "" if position is None else f" at position {position}"
    tail = f"; {_ALLOWED}" if allowed else ""
    return ExpressionError(f"expression: {subject}{where}{problem}{tail}", position)


# ---------------------------------------------------------------------------------------------
# The lexical gate


_TOKEN = re.compile(
    r"(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_]\w*)"
    r"|(?P<op>[-+*/^(),])|(?P<blank>[ \t]+)",
    re.ASCII,
)


def _scan(text: str) -> tuple[str, list[int]]:
    """The text with leading blanks removed and ``^`` written ``**``, and ``origin[j]``: the
    offset in ``text`` of its j-th character (one more entry for the end). Refuses every
    character outside the gate and a number running into a name (``2x``, ``1e``, ``0x1f``)."""
    out: list[str] = []
    origin: list[int] = []
    i = len(text) - len(text.lstrip(" \t"))
    while i < len(text):
        match = _TOKEN.match(text, i)
        if match is None:
            c = text[i]
            hint = f" ({_HINTS[c]})" if c in _HINTS else ""
            raise _error(f"character {c!r}", i, f" is not allowed{hint}")
        token, j = match.group(), match.end()
        if match.lastgroup == "number" and re.match(r"[\w.]", text[j : j + 1], re.ASCII):
            raise _error(
                f"number {token!r}",
                i,
                f" runs into {text[j]!r} (write 2*x for a product; numbers are decimal, "
                "such as 3, 0.5, 1e-3)",
            )
        if token == "^":
            token = "**"
        out.append(token)
        origin.extend(range(i, j) if len(token) == j - i else (i, i))
        i = j
    origin.append(len(text))
    return "".join(out), origin


# ---------------------------------------------------------------------------------------------
# The expression DAG and its derivatives


class _Graph:
    """Interned expression nodes: node ids are list indices, a node's children always have
    smaller ids (so sorting ids is a topological order), equal subexpressions one id."""

    def __init__(self) -> None:
        self.keys: list[tuple] = []
        self.values: list[float | None] = []
        self.index: dict[tuple, int] = {}
        self.x = self._intern(("x",))
        self.y = self._intern(("y",))
        self.zero = self.const(0.0)
        self.one = self.const(1.0)

    def _intern(self, key: tuple, value: float | None = None) -> int:
        node = self.index.get(key)
        if node is None:
            if len(self.keys) >= MAX_DAG_NODES:
                raise _error(
                    f"its derivatives have more than {MAX_DAG_NODES} distinct parts "
                    "(type a smaller function)",
                    None,
                    allowed=False,
                )
            node = len(self.keys)
            self.keys.append(key)
            self.values.append(value)
            self.index[key] = node
        return node

    def const(self, value: float) -> int:
        """The node of the float ``value`` (0.0 and -0.0 are two nodes)."""
        value = float(value)
        return self._intern(("const", value.hex()), value)

    def value(self, node: int) -> float | None:
        """The float of a constant node, None for any other node."""
        return self.values[node]

    def op(self, name: str, *args: int) -> int:
        """The node ``name(*args)``, simplified (see the module docstring) and folded when
        every argument is a constant."""
        vals = [self.values[a] for a in args]
        if all(v is not None for v in vals):
            with np.errstate(all="ignore"):
                return self.const(_UFUNCS[name](*vals))
        if len(args) == 2:
            a, b = args
            va, vb = vals
            if name == "add" and (va == 0.0 or vb == 0.0):
                return b if va == 0.0 else a
            if a == b and name in ("sub", "div"):
                return self.zero if name == "sub" else self.one
            if name == "sub" and vb == 0.0:
                return a
            if name == "sub" and va == 0.0:
                return self.op("neg", b)
            if name == "mul" and (va == 0.0 or vb == 0.0):
                return self.zero
            if name == "mul" and (va == 1.0 or vb == 1.0):
                return b if va == 1.0 else a
            if name == "mul" and (va == -1.0 or vb == -1.0):
                return self.op("neg", b if va == -1.0 else a)
            if name == "div" and vb == 1.0:
                return a
            if name == "div" and va == 0.0:
                return self.zero
            if name == "pow" and vb == 1.0:
                return a
            if name == "pow" and vb == 0.0:
                return self.one
            if name == "pow" and self.keys[a][0] == "abs" and vb is not None and vb % 2 == 0:
                return self.op("pow", self.keys[a][1], b)  # |u|^2k = u^2k, smooth at u = 0
            if name in _COMMUTATIVE and b < a:
                args = (b, a)
        elif name == "neg" and self.keys[args[0]][0] == "neg":
            return self.keys[args[0]][1]
        return self._intern((name, *args))

    def reachable(self, outputs: list[int]) -> list[int]:
        """Every node the outputs depend on, in topological (id) order."""
        seen: set[int] = set()
        stack = list(outputs)
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(self.keys[node][1:] if self.values[node] is None else ())
        return sorted(seen)

    def derivative(self, outputs: list[int], var: int) -> list[int]:
        """d output / d var for each output (``var`` is ``self.x`` or ``self.y``), by the rules
        of the module docstring applied in topological order (forward mode, no recursion)."""
        d: dict[int, int] = {}
        for node in self.reachable(outputs):
            d[node] = self._rule(node, var, d)
        return [d[o] for o in outputs]

    def _rule(self, node: int, var: int, d: dict[int, int]) -> int:
        key = self.keys[node]
        name = key[0]
        if name in ("x", "y"):
            return self.one if node == var else self.zero
        if name == "const":
            return self.zero
        op, zero = self.op, self.zero
        if len(key) == 2:
            du = d[key[1]]
            flat = self.values[du] == 0.0 or name == "sign"
            return zero if flat else self._unary(name, node, key[1], du)
        u, v = key[1], key[2]
        du, dv = d[u], d[v]
        if self.values[du] == 0.0 and self.values[dv] == 0.0:
            return zero
        if name == "add":
            return op("add", du, dv)
        if name == "sub":
            return op("sub", du, dv)
        if name == "mul":
            return op("add", op("mul", du, v), op("mul", u, dv))
        if name == "div":
            return op("div", op("sub", du, op("mul", node, dv)), v)
        if name == "atan2":
            square = self.const(2.0)
            num = op("sub", op("mul", v, du), op("mul", u, dv))
            return op("div", num, op("add", op("pow", u, square), op("pow", v, square)))
        # pow
        c = self.values[v]
        if c is not None:
            return op("mul", op("mul", v, op("pow", u, self.const(c - 1.0))), du)
        log_u = op("log", u)
        if self.values[du] == 0.0:
            return op("mul", op("mul", node, log_u), dv)
        return op("mul", node, op("add", op("mul", dv, log_u), op("div", op("mul", v, du), u)))

    def _unary(self, name: str, node: int, u: int, du: int) -> int:
        """d name(u) = name'(u) du (``node`` is name(u) itself, reused where it appears)."""
        op, c = self.op, self.const
        if name == "neg":
            return op("neg", du)
        if name == "log":
            return op("div", du, u)
        if name == "log10":
            return op("div", du, op("mul", u, c(math.log(10.0))))
        if name == "sqrt":
            return op("div", du, op("mul", c(2.0), node))
        if name == "cbrt":
            return op("div", du, op("mul", c(3.0), op("pow", node, c(2.0))))
        if name in ("asin", "acos"):
            root = op("sqrt", op("sub", self.one, op("pow", u, c(2.0))))
            return op("div", du if name == "asin" else op("neg", du), root)
        if name == "atan":
            return op("div", du, op("add", self.one, op("pow", u, c(2.0))))
        if name == "exp":
            factor = node
        elif name == "sin":
            factor = op("cos", u)
        elif name == "cos":
            factor = op("neg", op("sin", u))
        elif name == "tan":
            factor = op("add", self.one, op("pow", node, c(2.0)))
        elif name == "sinh":
            factor = op("cosh", u)
        elif name == "cosh":
            factor = op("sinh", u)
        elif name == "tanh":
            factor = op("sub", self.one, op("pow", node, c(2.0)))
        else:  # abs
            factor = op("sign", u)
        return op("mul", factor, du)


def _program(graph: _Graph, outputs: list[int]) -> tuple[Callable, int]:
    """Compile the outputs into ``run(x, y) -> tuple`` and its number of ufunc calls.

    Registers: x, y, the constants, then one per operation node in topological order; each
    step appends ``ufunc(r[a])`` or ``ufunc(r[a], r[b])``. Powers with constant exponent 2,
    0.5 and -1 use square, sqrt and reciprocal (exactly rounded, unlike pow)."""
    slot: dict[int, int] = {graph.x: 0, graph.y: 1}
    registers: list[Any] = [None, None]
    steps: list[tuple[Callable, int, int]] = []
    nodes = graph.reachable(outputs)
    for node in nodes:
        if graph.values[node] is not None:
            slot[node] = len(registers)
            registers.append(graph.values[node])
    first = len(registers)
    for node in nodes:
        key = graph.keys[node]
        if key[0] in ("x", "y", "const"):
            continue
        name, args = key[0], key[1:]
        if name == "pow" and graph.values[args[1]] in (2.0, 0.5, -1.0):
            name = {2.0: "square", 0.5: "sqrt", -1.0: "reciprocal"}[graph.values[args[1]]]
            args = args[:1]
        slot[node] = first + len(steps)
        steps.append((_UFUNCS[name], slot[args[0]], slot[args[1]] if len(args) == 2 else -1))
    out = tuple(slot[o] for o in outputs)
    constants = tuple(registers[2:])
    plan = tuple(steps)

    def run(x, y):
        r = [x, y, *constants]
        with np.errstate(all="ignore"):
            for fn, a, b in plan:
                r.append(fn(r[a]) if b < 0 else fn(r[a], r[b]))
        return tuple(r[i] for i in out)

    return run, len(steps)


# ---------------------------------------------------------------------------------------------
# From the syntax tree to the DAG, and back to text


class _Builder:
    """Walks the whitelisted syntax tree of the scanned text into a :class:`_Graph` and
    renders the normalized text; positions are mapped back to the text as typed."""

    def __init__(self, text: str, source: str, origin: list[int]):
        self.original, self.source, self.origin = text, source, origin
        self.graph = _Graph()

    def at(self, node: ast.AST) -> int:
        return self.origin[min(node.col_offset, len(self.origin) - 1)]

    def segment(self, node: ast.AST) -> str:
        start, end = self.at(node), self.origin[min(node.end_col_offset, len(self.origin) - 1)]
        return self.original[start:end]

    def build(self, node: ast.AST) -> int:
        """The graph node of ``node``; a constant part must be finite."""
        result = self._build(node)
        value = self.graph.value(result)
        if value is not None and not math.isfinite(value):
            raise _error(
                f"the constant {self.segment(node)!r}",
                self.at(node),
                f" is {value} (numbers must be finite and real)",
            )
        return result

    def _build(self, node: ast.AST) -> int:
        g = self.graph
        if isinstance(node, ast.Constant):
            return g.const(self._number(node))
        if isinstance(node, ast.Name):
            if node.id == "x":
                return g.x
            if node.id == "y":
                return g.y
            if node.id in _CONSTANTS:
                return g.const(_CONSTANTS[node.id])
            if node.id in FUNCTIONS:
                raise _error(repr(node.id), self.at(node), f" is a function: call {node.id}(...)")
            raise _error(f"unknown name {node.id!r}", self.at(node))
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.UAdd):
                return self.build(node.operand)
            if isinstance(node.op, ast.USub):
                return g.op("neg", self.build(node.operand))
            raise _error("'not'", self.at(node), " is not allowed")
        if isinstance(node, ast.BinOp):
            name = _BINARY.get(type(node.op))
            if name is None:
                at = self.source.find("//", node.left.end_col_offset)
                raise _error("floor division '//'", self.origin[max(at, 0)], " is not allowed")
            if name == "pow" and isinstance(node.left, ast.Name) and node.left.id == "e":
                return g.op("exp", self.build(node.right))
            return g.op(name, self.build(node.left), self.build(node.right))
        if isinstance(node, ast.Call):
            return self._call(node)
        what = _NODE_NAMES.get(type(node), type(node).__name__)
        raise _error(what, self.at(node), " is not allowed")

    def _number(self, node: ast.Constant) -> float:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _error(f"the constant {value!r}", self.at(node), " is not allowed")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise _error(
                f"the number {self.segment(node)!r}", self.at(node), " is too large (> 1.8e308)"
            )
        return number

    def _call(self, node: ast.Call) -> int:
        func = node.func
        if not isinstance(func, ast.Name):
            raise _error(
                f"a call of {self.segment(func)!r}",
                self.at(node),
                " is not allowed: only the functions can be called (write 2*(...) for a product)",
            )
        if func.id not in FUNCTIONS:
            kind = "a variable" if func.id in NAMES else "an unknown function"
            raise _error(repr(func.id), self.at(func), f" is {kind}, not one of the functions")
        if node.keywords:
            raise _error(f"keyword arguments in {func.id}(...)", self.at(node), " are not allowed")
        op, arity = FUNCTIONS[func.id]
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise _error("'*' unpacking", self.at(arg), " is not allowed")
        if len(node.args) != arity:
            raise _error(
                func.id,
                self.at(node),
                f" takes {arity} argument{'s' if arity > 1 else ''}, got {len(node.args)}",
            )
        return self.graph.op(op, *(self.build(arg) for arg in node.args))

    def render(self, node: ast.AST) -> tuple[str, int]:
        """(normalized text, precedence): 1 sums, 2 products, 3 signs, 4 powers, 5 atoms;
        parentheses only where the tree needs them, powers as ``^``, unary + dropped."""
        if isinstance(node, ast.Constant):
            return self.segment(node), 5
        if isinstance(node, ast.Name):
            return node.id, 5
        if isinstance(node, ast.Call):
            return f"{node.func.id}({', '.join(self.render(a)[0] for a in node.args)})", 5
        if isinstance(node, ast.UnaryOp):
            text, prec = self.render(node.operand)
            if isinstance(node.op, ast.UAdd):
                return text, prec
            return "-" + (f"({text})" if prec <= 3 else text), 3
        name = _BINARY[type(node.op)]
        left, lp = self.render(node.left)
        right, rp = self.render(node.right)
        if name == "pow":
            left = f"({left})" if lp <= 4 else left
            right = f"({right})" if rp < 3 else right
            return f"{left}^{right}", 4
        prec = 1 if name in ("add", "sub") else 2
        left = f"({left})" if lp < prec else left
        right = f"({right})" if rp <= prec else right
        symbol = {"add": " + ", "sub": " - ", "mul": "*", "div": "/"}[name]
        return f"{left}{symbol}{right}", prec


# ---------------------------------------------------------------------------------------------
# The public interface


@dataclass(frozen=True, eq=False)
class Expression:
    """A parsed function f(x, y): ``text`` (normalized), and ``f(x, y) -> f``,
    ``grad(x, y) -> (f_x, f_y)``, ``hess(x, y) -> (f_xx, f_xy, f_yy)`` on broadcastable
    float arrays (the per-coordinate functions of :class:`~optimlab.lab.surfaces.Surface`).
    ``gradient_cost`` and ``hessian_cost`` count the ufunc calls of one evaluation: the
    time of a gradient of one point is about 5 us plus 0.4 us per call."""

    text: str
    f: Callable
    grad: Callable
    hess: Callable
    gradient_cost: int
    hessian_cost: int

    def surface(self, *, domain=DEFAULT_DOMAIN, start=None) -> Surface:
        """This function as a Surface named ``"expression"`` (see :func:`parse_surface`)."""
        box = _check_domain(domain)
        (x0, x1), (y0, y1) = box
        point = (x0 + 0.2 * (x1 - x0), y0 + 0.8 * (y1 - y0)) if start is None else start
        point = _check_start(point)
        return Surface(
            name="expression",
            title=self.text,
            formula=self.text,
            description="a function typed by the user",
            minima=(),
            starts={"start": point},
            domain=box,
            tags=frozenset(),
            log_levels=False,
            _f=self.f,
            _grad=self.grad,
            _hess=self.hess,
        )


def parse_expression(text: str) -> Expression:
    """Parse ``text`` (a function of x and y, see the module docstring) into an
    :class:`Expression` with its exact gradient and Hessian. Raises :class:`ExpressionError`
    for anything outside the whitelist or the limits; results are cached by text."""
    if not isinstance(text, str):
        raise _error(
            f"must be a string such as 'x^2 + 10*y^2', got {type(text).__name__}",
            None,
            allowed=False,
        )
    return _parse(text)


@functools.lru_cache(maxsize=256)
def _parse(text: str) -> Expression:
    if len(text) > MAX_LENGTH:
        raise _error(
            f"{len(text)} characters, more than the {MAX_LENGTH} allowed", None, allowed=False
        )
    used = sum(not c.isspace() for c in text)
    if used > MAX_CHARACTERS:
        raise _error(
            f"{used} characters (not counting blanks), more than the {MAX_CHARACTERS} allowed",
            None,
            allowed=False,
        )
    if not text.strip():
        raise _error("empty; type a function of x and y such as x^2 + 10*y^2", None)
    source, origin = _scan(text)
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        offset = getattr(error, "offset", None)
        at = None if offset is None else origin[min(max(offset - 1, 0), len(origin) - 1)]
        reason = getattr(error, "msg", None) or "invalid syntax"
        raise _error("syntax error", at, f" ({reason})") from None
    parts, depth = _size(tree.body)
    if parts > MAX_NODES:
        raise _error(
            f"{parts} parts (numbers, names, operations, calls), more than the {MAX_NODES} allowed",
            None,
            allowed=False,
        )
    if depth > MAX_DEPTH:
        raise _error(
            f"nested {depth} levels deep, more than the {MAX_DEPTH} allowed", None, allowed=False
        )
    builder = _Builder(text, source, origin)
    g = builder.graph
    f = builder.build(tree.body)
    normalized, _ = builder.render(tree.body)
    fx, fy = g.derivative([f], g.x)[0], g.derivative([f], g.y)[0]
    fxx, fxy = g.derivative([fx], g.x)[0], g.derivative([fx], g.y)[0]
    fyy = g.derivative([fy], g.y)[0]
    value, _ = _program(g, [f])
    gradient, gradient_cost = _program(g, [fx, fy])
    if gradient_cost > MAX_GRADIENT_COST:
        raise _error(
            f"its gradient takes {gradient_cost} operations, more than the "
            f"{MAX_GRADIENT_COST} allowed (type a smaller function)",
            None,
            allowed=False,
        )
    hessian, hessian_cost = _program(g, [fxx, fxy, fyy])
    return Expression(
        text=normalized,
        f=lambda x, y: value(x, y)[0],
        grad=gradient,
        hess=hessian,
        gradient_cost=gradient_cost,
        hessian_cost=hessian_cost,
    )


def _size(tree: ast.AST) -> tuple[int, int]:
    """(number of expression nodes, depth) of a syntax tree, without recursion."""
    parts, deepest, stack = 0, 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ast.expr):
            parts += 1
            deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return parts, deepest


def parse_surface(text: str, *, domain=DEFAULT_DOMAIN, start=None) -> Surface:
    """The Surface f(x, y) = ``text``: name ``"expression"``, title and formula the normalized
    text, no listed minima, ``log_levels=False``, one start ``"start"`` (default: the point
    20% across and 80% up the domain), exact gradient and Hessian.

    ``domain`` is ((xmin, xmax), (ymin, ymax)) of finite numbers with xmin < xmax,
    ymin < ymax and |bound| <= 1e6; ``start`` (x, y) finite with |coordinate| <= 1e6 (it may
    lie outside the domain). A bad text raises :class:`ExpressionError`; a bad domain or
    start a plain ValueError naming it."""
    return parse_expression(text).surface(domain=domain, start=start)


def _real(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except (OverflowError, ValueError):
        return None
    return number if math.isfinite(number) and abs(number) <= MAX_BOUND else None


def _pair(value: Any) -> tuple[float, float] | None:
    try:
        items = list(value) if isinstance(value, list | tuple | np.ndarray) else None
    except TypeError:
        items = None
    if items is None or len(items) != 2:
        return None
    a, b = _real(items[0]), _real(items[1])
    return None if a is None or b is None else (a, b)


def _check_domain(domain: Any) -> tuple[tuple[float, float], tuple[float, float]]:
    rows = _pair_of_pairs(domain)
    if rows is None or not (rows[0][0] < rows[0][1] and rows[1][0] < rows[1][1]):
        raise ValueError(
            "domain must be ((xmin, xmax), (ymin, ymax)) of finite numbers with xmin < xmax, "
            f"ymin < ymax and |bound| <= {MAX_BOUND:g}, got {domain!r}"[:300]
        )
    return rows


def _pair_of_pairs(domain: Any):
    if not isinstance(domain, list | tuple | np.ndarray) or len(domain) != 2:
        return None
    rows = (_pair(domain[0]), _pair(domain[1]))
    return None if None in rows else rows


def _check_start(start: Any) -> tuple[float, float]:
    point = _pair(start)
    if point is None:
        raise ValueError(
            f"start must be (x, y) of finite numbers with |coordinate| <= {MAX_BOUND:g}, "
            f"got {start!r}"[:300]
        )
    return point
