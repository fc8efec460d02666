"""Template parameters, checked as CloudFormation checks them before it creates anything.

moto takes any parameter it is given; CloudFormation refuses a stack whose parameters name a
key the template lacks, leave out one without a ``Default``, break a constraint, or fail an
assertion of the template's ``Rules``. The sandbox and ``make check-config`` use these
rules, so a typo fails there as it would in AWS.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

#: A number parameter's value: an integer or a decimal, in ASCII digits. Python's
#: ``float`` alone would also take ``1_000``, `` 7 ``, ``nan`` and non-ASCII digits.
_NUMBER: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


class ParameterValidationError(ValueError):
    """The parameters break the template's rules; the message names each parameter."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"Parameter '{key}': {rule}" for key, rule in problems))


def _is_list(kind: str) -> bool:
    return kind == "CommaDelimitedList" or kind.startswith("List<")


def _number(text: str) -> float | None:
    if _NUMBER.fullmatch(text) is None:
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _value_problems(spec: Mapping[str, Any], value: str) -> Iterator[str]:
    """What in ``value`` breaks the parameter's constraints (a list: each element's)."""
    kind = str(spec.get("Type", "String"))
    items = [item.strip() for item in value.split(",")] if _is_list(kind) and value else [value]
    allowed = [str(option) for option in spec.get("AllowedValues") or []]
    pattern = spec.get("AllowedPattern")
    for item in items:
        if allowed and item not in allowed:
            yield f"{item!r} is not one of the AllowedValues ({', '.join(allowed)})"
        if pattern is not None and re.fullmatch(str(pattern), item) is None:
            described = spec.get("ConstraintDescription") or f"AllowedPattern {pattern}"
            yield f"{item!r} does not match {described}"
        if kind in ("Number", "List<Number>"):
            yield from _number_problems(spec, item)
    if kind == "String":
        if "MinLength" in spec and len(value) < int(spec["MinLength"]):
            yield f"is shorter than its MinLength {spec['MinLength']}"
        if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
            yield f"is longer than its MaxLength {spec['MaxLength']}"


def _number_problems(spec: Mapping[str, Any], item: str) -> Iterator[str]:
    number = _number(item)
    if number is None:
        yield f"{item!r} is not a number"
        return
    if "MinValue" in spec and number < float(spec["MinValue"]):
        yield f"{item} is below its MinValue {spec['MinValue']}"
    if "MaxValue" in spec and number > float(spec["MaxValue"]):
        yield f"{item} is above its MaxValue {spec['MaxValue']}"


def parameter_problems(
    template: Mapping[str, Any], given: Mapping[str, str]
) -> list[tuple[str, str]]:
    """Every (parameter, rule) pair the values ``given`` break, in the template's order
    (unknown keys last); empty when CloudFormation would accept them."""
    declared: Mapping[str, Any] = template.get("Parameters") or {}
    problems: list[tuple[str, str]] = []
    for key, spec in declared.items():
        if key not in given:
            if "Default" not in spec:
                problems.append((key, "is required (it has no Default) and was not given"))
            continue
        problems += [(key, rule) for rule in _value_problems(spec, str(given[key]))]
    problems += [(key, _unknown(key, list(declared))) for key in given if key not in declared]
    if not problems:  # as CloudFormation: the rules once every value is valid
        values = {
            name: str(given.get(name, spec.get("Default", ""))) for name, spec in declared.items()
        }
        problems += _rule_problems(template.get("Rules") or {}, values)
    return problems


def _rule_problems(rules: Mapping[str, Any], values: Mapping[str, str]) -> list[tuple[str, str]]:
    """The assertions of ``Rules`` that fail, each as (the first parameter it reads, its
    AssertDescription and the rule's name); a rule applies when its RuleCondition holds."""
    problems = []
    for name, rule in rules.items():
        if "RuleCondition" in rule and not _holds(rule["RuleCondition"], values):
            continue
        for assertion in rule.get("Assertions") or []:
            if not _holds(assertion["Assert"], values):
                read = _refs(assertion["Assert"]) or [name]
                description = assertion.get("AssertDescription") or "an assertion fails"
                problems.append((read[0], f"{description} (rule {name})"))
    return problems


def _holds(expression: Any, values: Mapping[str, str]) -> bool:
    result = _evaluate(expression, values)
    if not isinstance(result, bool):
        raise TypeError(f"a rule's condition is not true or false: {expression!r}")
    return result


def _evaluate(expression: Any, values: Mapping[str, str]) -> Any:
    """A rule's expression: Ref to a parameter, Fn::Equals, Fn::Not, Fn::And, Fn::Or."""
    if not isinstance(expression, Mapping):
        return str(expression)
    ((function, argument),) = expression.items()
    if function == "Ref":
        return values[argument]
    operands = [_evaluate(item, values) for item in argument]
    if function == "Fn::Equals":
        return operands[0] == operands[1]
    if function == "Fn::Not":
        return not operands[0]
    if function == "Fn::And":
        return all(operands)
    if function == "Fn::Or":
        return any(operands)
    raise NotImplementedError(f"the sandbox does not evaluate {function} in Rules")


def _refs(expression: Any) -> list[str]:
    if isinstance(expression, Mapping):
        if set(expression) == {"Ref"}:
            return [str(expression["Ref"])]
        return [ref for value in expression.values() for ref in _refs(value)]
    if isinstance(expression, list):
        return [ref for item in expression for ref in _refs(item)]
    return []


def _unknown(key: str, declared: list[str]) -> str:
    close = difflib.get_close_matches(key, declared, n=1)
    hint = f"did you mean {close[0]}?" if close else f"it has: {', '.join(declared)}"
    return f"is not a parameter of the template ({hint})"


def check_parameters(template: Mapping[str, Any], given: Mapping[str, str]) -> None:
    """Raise ``ParameterValidationError`` naming every problem, as CloudFormation refuses."""
    problems = parameter_problems(template, given)
    if problems:
        raise ParameterValidationError(problems)
