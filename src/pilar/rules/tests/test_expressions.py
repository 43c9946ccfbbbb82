"""The expression language: parsing (precedence, positions, syntax errors) and type checking."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from pilar.rules.errors import FormulaTypeError, UnknownNameError
from pilar.rules.explanation import TypeName
from pilar.rules.expressions import (
    Binary,
    Call,
    Compare,
    If,
    Literal,
    Logical,
    Name,
    NameKind,
    Not,
    Unary,
    parse,
    tokenize,
)

TYPES: dict[str, TypeName] = {
    "edad": "number",
    "semanas": "number",
    "salario": "number",
    "indigena": "bool",
    "residente": "bool",
    "nacimiento": "date",
    "estado": "text",
}


def resolve(node: Name) -> tuple[NameKind, TypeName] | None:
    if node.table == "tabla" and node.output == "factor":
        return "table", "number"
    if node.name == "evaluation_date":
        return "builtin", "date"
    found = TYPES.get(node.name)
    return ("variable", found) if found is not None else None


def check(text: str) -> TypeName:
    return parse(text, location="variables.yaml:7").check(resolve)


def test_precedence_follows_the_grammar() -> None:
    root = parse("a + b * c >= d and not e or f").root
    assert isinstance(root, Logical)
    assert root.operator == "or"
    conjunction = root.operands[0]
    assert isinstance(conjunction, Logical)
    assert conjunction.operator == "and"
    comparison, negation = conjunction.operands
    assert isinstance(comparison, Compare)
    assert comparison.operator == ">="
    assert isinstance(negation, Not)
    total = comparison.left
    assert isinstance(total, Binary)
    assert total.operator == "+"
    assert isinstance(total.right, Binary)
    assert total.right.operator == "*"


def test_arithmetic_is_left_associative() -> None:
    root = parse("a - b - c").root
    assert isinstance(root, Binary)
    assert isinstance(root.left, Binary)
    assert isinstance(root.left.left, Name)
    assert root.left.left.name == "a"


def test_atoms() -> None:
    root = parse("if x then -y else tabla.factor").root
    assert isinstance(root, If)
    assert isinstance(root.then, Unary)
    assert isinstance(root.otherwise, Name)
    assert (root.otherwise.table, root.otherwise.output) == ("tabla", "factor")
    number = parse("0.80").root
    assert isinstance(number, Literal)
    assert number.value == Decimal("0.80")
    negative = parse("-5").root
    assert isinstance(negative, Literal)
    assert negative.value == Decimal(-5)
    text = parse("'LSS 1973'").root
    assert isinstance(text, Literal)
    assert text.value == "LSS 1973"
    call = parse("max(a, b, 3)").root
    assert isinstance(call, Call)
    assert len(call.arguments) == 3


def test_date_literals_accept_both_quotes_and_are_constants() -> None:
    for text in ("date('2021-07-01')", 'date("2021-07-01")'):
        root = parse(text).root
        assert isinstance(root, Literal)
        assert root.value == datetime.date(2021, 7, 1)


def test_nodes_keep_their_column() -> None:
    root = parse("edad >= 65").root
    assert isinstance(root, Compare)
    assert root.right.position == 8
    assert [token.position for token in tokenize("a  + b")] == [0, 3, 5, 6]


def test_names_in_order_of_first_appearance() -> None:
    expression = parse("b + a * b + tabla.factor + max(c, a)")
    assert expression.names() == ["b", "a", "tabla.factor", "c"]


@pytest.mark.parametrize(
    ("text", "column", "problem"),
    [
        ("edad >=", 8, "expected a value"),
        ("(edad + 1", 10, "expected ')'"),
        ("edad 65", 6, "expected an operator"),
        ("edad # 3", 6, "unexpected character '#'"),
        ("a < b < c", 7, "comparisons do not chain"),
        ("if a then b", 12, "expected 'else'"),
        ("", 1, "empty expression"),
        ("date('1 de julio')", 6, "not an ISO date"),
        ("date(edad)", 1, "date() takes one quoted ISO date"),
        ("tabla.", 7, "expected an output name"),
    ],
)
def test_syntax_errors_name_the_column(text: str, column: int, problem: str) -> None:
    with pytest.raises(FormulaTypeError) as caught:
        parse(text, location="variables.yaml:7")
    error = caught.value
    assert error.code == "syntax_error"
    assert error.location == "variables.yaml:7"
    assert error.params["column"] == column
    assert problem in error.params["problem"]
    assert error.params["expression"] == text


def test_an_unknown_function_is_an_unknown_name() -> None:
    with pytest.raises(UnknownNameError) as caught:
        parse("__import__('os')", location="variables.yaml:3")
    assert caught.value.params["name"] == "__import__"
    assert caught.value.location == "variables.yaml:3"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("edad + 1", "number"),
        ("edad >= 65 and indigena", "bool"),
        ("if indigena then 60 else 65", "number"),
        ("estado == 'casado'", "bool"),
        ("nacimiento < date('2000-01-01')", "bool"),
        ("max(nacimiento, evaluation_date)", "date"),
        ("years_between(nacimiento, evaluation_date)", "number"),
        ("year(nacimiento)", "number"),
        ("round(salario * tabla.factor, 2)", "number"),
        ("floor(semanas / 52) + ceil(1.5) + abs(-2)", "number"),
        ("not residente", "bool"),
    ],
)
def test_well_typed_expressions(text: str, expected: TypeName) -> None:
    assert check(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("edad + indigena", "'+' applies to numbers; this is bool"),
        ("edad >= nacimiento", "cannot compare number with date"),
        ("estado < 'b'", "'<' compares numbers or dates, not text"),
        ("edad and indigena", "'and' joins conditions (bool); this is number"),
        ("not edad", "'not' applies to a condition (bool); this is number"),
        ("-indigena", "'-' applies to numbers; this is bool"),
        ("if edad then 1 else 2", "the condition after 'if' must be bool"),
        ("if indigena then 1 else 'x'", "'then' is number but 'else' is text"),
        ("max(edad, nacimiento)", "max() arguments must all be number"),
        ("min(estado)", "min() takes numbers or dates, not text"),
        ("round(edad, semanas)", "round(x, n) needs n as a whole number"),
        ("round(edad, 1.5)", "round(x, n) needs n as a whole number"),
        ("round(edad)", "round() takes 2 argument(s)"),
        ("year(edad)", "year() takes a date"),
        ("years_between(edad, nacimiento)", "years_between() takes two dates"),
    ],
)
def test_type_errors_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(FormulaTypeError) as caught:
        check(text)
    error = caught.value
    assert error.code == "type_error"
    assert problem in error.params["problem"]
    assert error.location == "variables.yaml:7"
    assert error.params["expression"] == text


def test_the_expected_type_of_the_whole_expression_is_checked() -> None:
    with pytest.raises(FormulaTypeError) as caught:
        parse("edad + 1", location="variables.yaml:9").check(resolve, "bool", "a condition")
    assert "a condition must be bool, but this is number" in caught.value.params["problem"]


def test_unknown_names_are_refused_with_the_expression() -> None:
    with pytest.raises(UnknownNameError) as caught:
        check("semanas_cotisadas >= 500")
    assert caught.value.params["name"] == "semanas_cotisadas"
    assert caught.value.location == "variables.yaml:7"
    assert "semanas_cotisadas >= 500" in caught.value.message("en")
    with pytest.raises(UnknownNameError):
        check("tabla.cuantia")


def test_the_checker_records_types_and_name_kinds() -> None:
    expression = parse("tabla.factor * edad > 1")
    expression.check(resolve)
    root = expression.root
    assert isinstance(root, Compare)
    assert root.type == "bool"
    assert root.left.type == "number"
    product = root.left
    assert isinstance(product, Binary)
    assert isinstance(product.left, Name)
    assert product.left.kind == "table"
