"""The expression language: tokenizer, recursive-descent parser and type checker.

Formulas are parsed once, when a package loads, into a small AST whose nodes keep their offset
in the source text (so an error can point at the column). The single-case interpreter
(``evaluation``) and the Polars compiler (``bulk``) both walk this AST; Python ``eval`` is never
used. The grammar is the one in ``docs/rules-language.md``::

    expr    := 'if' expr 'then' expr 'else' expr | or
    or      := and ('or' and)*
    and     := not ('and' not)*
    not     := 'not' not | compare
    compare := sum (('<' | '<=' | '>' | '>=' | '==' | '!=') sum)?
    sum     := product (('+' | '-') product)*
    product := unary (('*' | '/') unary)*
    unary   := '-' unary | atom
    atom    := NUMBER | 'true' | 'false' | STRING | NAME | NAME '.' NAME
             | NAME '(' args ')' | '(' expr ')'
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal as TypingLiteral

from pilar.rules.errors import FormulaTypeError, UnknownNameError
from pilar.rules.explanation import TypeName, Value

KEYWORDS = frozenset({"if", "then", "else", "and", "or", "not", "true", "false"})
BUILTIN_NAMES: dict[str, TypeName] = {"evaluation_date": "date"}
FUNCTIONS = frozenset(
    {"min", "max", "round", "floor", "ceil", "abs", "date", "year", "years_between"}
)
COMPARISONS = ("<=", ">=", "==", "!=", "<", ">")

# Numbers that differ by less than this compare equal, in both modes. Bulk works in float64,
# where 0.1 * 3 is 0.30000000000000004; the single-case mode snaps the same way so that the two
# agree (a Decimal quotient such as 1 / 3 * 3 is 0.999…9 there). Amounts in law have at most six
# decimals, far above the tolerance, so no legitimate difference is lost.
TOLERANCE = Decimal("1e-9")
TOLERANCE_FLOAT = 1e-9

NameKind = TypingLiteral["variable", "parameter", "table", "builtin"]


# --------------------------------------------------------------------------------------------
# Tokens

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>\d+(?:\.\d+)?|\.\d+)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>[^\W\d]\w*)
  | (?P<op><=|>=|==|!=|<|>|\+|-|\*|/|\(|\)|,|\.)
    """,
    re.VERBOSE | re.UNICODE,
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # number | string | name | keyword | op | end
    text: str
    position: int


def tokenize(text: str, *, location: str | None = None) -> list[Token]:
    """The tokens of ``text``; an unexpected character is a ``syntax_error`` at its column."""
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise _syntax_error(
                text, position, f"unexpected character {text[position]!r}", location
            )
        kind = match.lastgroup or ""
        if kind != "space":
            token_text = match.group()
            if kind == "name" and token_text in KEYWORDS:
                kind = "keyword"
            tokens.append(Token(kind, token_text, position))
        position = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


# --------------------------------------------------------------------------------------------
# AST. Nodes are mutable only so the type checker can record each node's type once, at load.


@dataclass(slots=True, eq=False)
class Expr:
    position: int
    type: TypeName | None = field(default=None, init=False)


@dataclass(slots=True, eq=False)
class Literal(Expr):
    value: Value


@dataclass(slots=True, eq=False)
class Name(Expr):
    """A variable, a parameter, a built-in, or ``table.output`` (``table`` and ``output`` set)."""

    name: str
    table: str | None = None
    output: str | None = None
    kind: NameKind | None = field(default=None, init=False)


@dataclass(slots=True, eq=False)
class Unary(Expr):
    """Arithmetic negation."""

    operand: Expr


@dataclass(slots=True, eq=False)
class Not(Expr):
    operand: Expr


@dataclass(slots=True, eq=False)
class Binary(Expr):
    operator: str  # + - * /
    left: Expr
    right: Expr


@dataclass(slots=True, eq=False)
class Compare(Expr):
    operator: str  # < <= > >= == !=
    left: Expr
    right: Expr


@dataclass(slots=True, eq=False)
class Logical(Expr):
    operator: str  # and | or
    operands: list[Expr]


@dataclass(slots=True, eq=False)
class If(Expr):
    condition: Expr
    then: Expr
    otherwise: Expr


@dataclass(slots=True, eq=False)
class Call(Expr):
    function: str
    arguments: list[Expr]


def walk(node: Expr) -> Iterator[Expr]:
    """``node`` and every node below it, depth first, left to right."""
    yield node
    if isinstance(node, Unary | Not):
        yield from walk(node.operand)
    elif isinstance(node, Binary | Compare):
        yield from walk(node.left)
        yield from walk(node.right)
    elif isinstance(node, Logical):
        for operand in node.operands:
            yield from walk(operand)
    elif isinstance(node, If):
        yield from walk(node.condition)
        yield from walk(node.then)
        yield from walk(node.otherwise)
    elif isinstance(node, Call):
        for argument in node.arguments:
            yield from walk(argument)


# --------------------------------------------------------------------------------------------
# Parser


def _syntax_error(text: str, position: int, problem: str, location: str | None) -> FormulaTypeError:
    return FormulaTypeError(
        {"expression": text, "column": position + 1, "problem": problem},
        location=location,
        syntax=True,
    )


class _Parser:
    def __init__(self, text: str, location: str | None) -> None:
        self.text = text
        self.location = location
        self.tokens = tokenize(text, location=location)
        self.index = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def at(self, kind: str, text: str | None = None) -> bool:
        token = self.current
        return token.kind == kind and (text is None or token.text == text)

    def expect(self, kind: str, text: str, what: str) -> Token:
        if not self.at(kind, text):
            raise self.error(f"expected {what}")
        return self.advance()

    def error(self, problem: str, position: int | None = None) -> FormulaTypeError:
        token = self.current
        if position is None:
            found = "end of expression" if token.kind == "end" else repr(token.text)
            problem = f"{problem}, found {found}"
            position = token.position
        return _syntax_error(self.text, position, problem, self.location)

    def parse(self) -> Expr:
        if self.at("end"):
            raise self.error("empty expression", 0)
        node = self.expression()
        if not self.at("end"):
            raise self.error("expected an operator or the end of the expression")
        return node

    def expression(self) -> Expr:
        if self.at("keyword", "if"):
            start = self.advance().position
            condition = self.expression()
            self.expect("keyword", "then", "'then'")
            then = self.expression()
            self.expect("keyword", "else", "'else'")
            otherwise = self.expression()
            return If(start, condition, then, otherwise)
        return self.logical("or", self.conjunction)

    def conjunction(self) -> Expr:
        return self.logical("and", self.negation)

    def logical(self, operator: str, operand: Callable[[], Expr]) -> Expr:
        first = operand()
        operands = [first]
        while self.at("keyword", operator):
            self.advance()
            operands.append(operand())
        if len(operands) == 1:
            return first
        return Logical(first.position, operator, operands)

    def negation(self) -> Expr:
        if self.at("keyword", "not"):
            start = self.advance().position
            return Not(start, self.negation())
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.sum()
        if self.current.kind == "op" and self.current.text in COMPARISONS:
            operator = self.advance().text
            right = self.sum()
            if self.current.kind == "op" and self.current.text in COMPARISONS:
                raise self.error("comparisons do not chain; join them with 'and'")
            return Compare(left.position, operator, left, right)
        return left

    def sum(self) -> Expr:
        node = self.product()
        while self.current.kind == "op" and self.current.text in ("+", "-"):
            operator = self.advance().text
            node = Binary(node.position, operator, node, self.product())
        return node

    def product(self) -> Expr:
        node = self.unary()
        while self.current.kind == "op" and self.current.text in ("*", "/"):
            operator = self.advance().text
            node = Binary(node.position, operator, node, self.unary())
        return node

    def unary(self) -> Expr:
        if self.at("op", "-"):
            start = self.advance().position
            operand = self.unary()
            # A negative number literal is folded so tables of constants read naturally in the
            # explanation and the bulk compiler emits one literal, not a negation.
            if isinstance(operand, Literal) and isinstance(operand.value, Decimal):
                return Literal(start, -operand.value)
            return Unary(start, operand)
        return self.atom()

    def atom(self) -> Expr:
        token = self.current
        if token.kind == "number":
            self.advance()
            return Literal(token.position, Decimal(token.text))
        if token.kind == "string":
            self.advance()
            return Literal(token.position, _unquote(token.text))
        if token.kind == "keyword" and token.text in ("true", "false"):
            self.advance()
            return Literal(token.position, token.text == "true")
        if token.kind == "op" and token.text == "(":
            self.advance()
            node = self.expression()
            self.expect("op", ")", "')'")
            return node
        if token.kind == "name":
            self.advance()
            if self.at("op", "("):
                return self.call(token)
            if self.at("op", "."):
                self.advance()
                output = self.current
                if output.kind != "name":
                    raise self.error("expected an output name after '.'")
                self.advance()
                return Name(
                    token.position,
                    f"{token.text}.{output.text}",
                    table=token.text,
                    output=output.text,
                )
            return Name(token.position, token.text)
        raise self.error("expected a value, a name or '('")

    def call(self, name: Token) -> Expr:
        if name.text not in FUNCTIONS:
            raise UnknownNameError(
                {
                    "name": name.text,
                    "context": f" (function) in “{self.text}”; "
                    f"functions: {', '.join(sorted(FUNCTIONS))}",
                },
                location=self.location,
            )
        self.expect("op", "(", "'('")
        arguments: list[Expr] = []
        if not self.at("op", ")"):
            arguments.append(self.expression())
            while self.at("op", ","):
                self.advance()
                arguments.append(self.expression())
        self.expect("op", ")", "')' or ','")
        if name.text == "date":
            # date('2021-07-01') is a constant: checked and converted once, here.
            if len(arguments) != 1 or not (
                isinstance(arguments[0], Literal) and isinstance(arguments[0].value, str)
            ):
                raise self.error(
                    "date() takes one quoted ISO date, e.g. date('2021-07-01')", name.position
                )
            try:
                value = datetime.date.fromisoformat(str(arguments[0].value))
            except ValueError:
                raise self.error(
                    f"{arguments[0].value!r} is not an ISO date (YYYY-MM-DD)", arguments[0].position
                ) from None
            return Literal(name.position, value)
        return Call(name.position, name.text, arguments)


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


@dataclass(eq=False)
class Expression:
    """A parsed formula: its source text, its AST, and where it was written."""

    text: str
    root: Expr
    location: str | None

    @property
    def type(self) -> TypeName:
        assert self.root.type is not None, "expression not type-checked"
        return self.root.type

    def names(self) -> list[str]:
        """Every name the expression reads, in order of first appearance."""
        seen: dict[str, None] = {}
        for node in walk(self.root):
            if isinstance(node, Name):
                seen.setdefault(node.name, None)
        return list(seen)

    def check(
        self, resolve: Resolver, expected: TypeName | None = None, what: str = ""
    ) -> TypeName:
        """Type-check against ``resolve`` (name → kind and type); refuse a wrong result type."""
        checker = _Checker(self, resolve)
        found = checker.check(self.root)
        if expected is not None and found != expected:
            raise checker.error(
                self.root, f"{what or 'the expression'} must be {expected}, but this is {found}"
            )
        return found


Resolver = Callable[[Name], tuple[NameKind, TypeName] | None]


def parse(text: str, *, location: str | None = None) -> Expression:
    """Parse ``text`` into an ``Expression``; raise ``FormulaTypeError`` (syntax) on bad input."""
    return Expression(text, _Parser(text, location).parse(), location)


# --------------------------------------------------------------------------------------------
# Type checker


class _Checker:
    def __init__(self, expression: Expression, resolve: Resolver) -> None:
        self.expression = expression
        self.resolve = resolve

    def error(self, node: Expr, problem: str) -> FormulaTypeError:
        return FormulaTypeError(
            {
                "expression": self.expression.text,
                "column": node.position + 1,
                "problem": problem,
            },
            location=self.expression.location,
        )

    def check(self, node: Expr) -> TypeName:
        found = self._check(node)
        node.type = found
        return found

    def _check(self, node: Expr) -> TypeName:
        if isinstance(node, Literal):
            return _literal_type(node.value)
        if isinstance(node, Name):
            resolved = self.resolve(node)
            if resolved is None:
                raise UnknownNameError(
                    {"name": node.name, "context": f" in “{self.expression.text}”"},
                    location=self.expression.location,
                )
            node.kind, name_type = resolved
            return name_type
        if isinstance(node, Unary):
            self.expect(node.operand, "number", "'-' applies to numbers")
            return "number"
        if isinstance(node, Not):
            self.expect(node.operand, "bool", "'not' applies to a condition (bool)")
            return "bool"
        if isinstance(node, Binary):
            self.expect(node.left, "number", f"'{node.operator}' applies to numbers")
            self.expect(node.right, "number", f"'{node.operator}' applies to numbers")
            return "number"
        if isinstance(node, Compare):
            left = self.check(node.left)
            right = self.check(node.right)
            if left != right:
                raise self.error(node, f"cannot compare {left} with {right}")
            if node.operator not in ("==", "!=") and left not in ("number", "date"):
                raise self.error(node, f"'{node.operator}' compares numbers or dates, not {left}")
            return "bool"
        if isinstance(node, Logical):
            for operand in node.operands:
                self.expect(operand, "bool", f"'{node.operator}' joins conditions (bool)")
            return "bool"
        if isinstance(node, If):
            self.expect(node.condition, "bool", "the condition after 'if' must be bool")
            then = self.check(node.then)
            otherwise = self.check(node.otherwise)
            if then != otherwise:
                raise self.error(node, f"'then' is {then} but 'else' is {otherwise}")
            return then
        if isinstance(node, Call):
            return self.call(node)
        raise AssertionError(f"unknown node {node!r}")

    def expect(self, node: Expr, expected: TypeName, problem: str) -> None:
        found = self.check(node)
        if found != expected:
            raise self.error(node, f"{problem}; this is {found}")

    def arity(self, node: Call, count: int) -> None:
        if len(node.arguments) != count:
            raise self.error(node, f"{node.function}() takes {count} argument(s)")

    def call(self, node: Call) -> TypeName:
        function = node.function
        arguments = node.arguments
        if function in ("min", "max"):
            if not arguments:
                raise self.error(node, f"{function}() needs at least one argument")
            first = self.check(arguments[0])
            if first not in ("number", "date"):
                raise self.error(node, f"{function}() takes numbers or dates, not {first}")
            for argument in arguments[1:]:
                self.expect(argument, first, f"{function}() arguments must all be {first}")
            return first
        if function == "round":
            self.arity(node, 2)
            self.expect(arguments[0], "number", "round() rounds a number")
            places = arguments[1]
            # The bulk compiler needs the number of places as a constant (a power of ten known
            # when the formula is compiled), and no law rounds to a computed number of places.
            if not (
                isinstance(places, Literal)
                and isinstance(places.value, Decimal)
                and places.value == places.value.to_integral_value()
                and 0 <= places.value <= 10
            ):
                raise self.error(places, "round(x, n) needs n as a whole number from 0 to 10")
            places.type = "number"
            return "number"
        if function in ("floor", "ceil", "abs"):
            self.arity(node, 1)
            self.expect(arguments[0], "number", f"{function}() takes a number")
            return "number"
        if function == "year":
            self.arity(node, 1)
            self.expect(arguments[0], "date", "year() takes a date")
            return "number"
        if function == "years_between":
            self.arity(node, 2)
            self.expect(arguments[0], "date", "years_between() takes two dates")
            self.expect(arguments[1], "date", "years_between() takes two dates")
            return "number"
        raise self.error(node, f"unknown function {function}()")


def _literal_type(value: Value) -> TypeName:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Decimal):
        return "number"
    if isinstance(value, datetime.date):
        return "date"
    return "text"
