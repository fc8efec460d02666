"""Check a CfCT configuration before it is uploaded: ``make check-config``.

    python -m scripts.cfct_config [--config stackset]

A configuration is a folder with ``manifest.yaml`` and the files its resources name
(``parameters/*.json``; ``templates/...`` may live in the folder or come from this project).
The checks are those CfCT's build stage runs, plus what CloudFormation would refuse later,
in the management account, after the upload:

- the manifest against CfCT's manifest rules (``MANIFEST_RULES``: the facts of CfCT's own
  pykwalify schema, version 2021-03-15, which the tests compare with that schema);
- regions that exist, OU names that are well formed (nested as ``Parent:Child``), account
  targets that are account ids or e-mail addresses;
- every file a resource names exists, every template parses, and every parameter file
  holds parameters the template declares, with values it accepts (``AllowedValues``,
  ``AllowedPattern``, lengths, number bounds), all required ones given;
- this project's template: a StackSet that targets several regions names in
  ``ConnectorRegion`` the one that holds each account's connector.

Each problem is printed as ``file: field: rule``; the exit status is 1 when there is any.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import yaml
from cfnlint.decode.cfn_yaml import loads as load_template

from sandbox.cloudformation.parameters import parameter_problems

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = REPO_ROOT / "stackset"
MANIFEST = "manifest.yaml"
CONNECTOR_TEMPLATE = "templates/qualys-connector.yaml"
CONNECTOR_REGION = "ConnectorRegion"
MANIFEST_VERSION = datetime.date(2021, 3, 15)
OU_NAME_LIMIT = 128
"""AWS Organizations' limit on an OU name, per level of a nested ``Parent:Child`` path."""


# --- CfCT's manifest rules, as data ------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One node of the manifest's shape, in the terms of CfCT's schema (pykwalify).

    ``kind`` is pykwalify's type: ``map`` (with ``fields``), ``seq`` (with ``item``),
    ``str``, ``bool``, ``date`` (a YAML date, so unquoted) or ``any``.
    """

    kind: str
    required: bool = False
    fields: Mapping[str, Rule] = field(default_factory=dict)
    item: Rule | None = None
    enum: tuple[object, ...] = ()
    unique: bool = False


def _map(required: bool = False, **fields: Rule) -> Rule:  # noqa: FBT001, FBT002 - terse table
    return Rule("map", required=required, fields=fields)


def _seq(item: Rule, *, required: bool = False) -> Rule:
    return Rule("seq", required=required, item=item)


_STR = Rule("str")
_REQUIRED_STR = Rule("str", required=True)

MANIFEST_RULES = _map(
    region=_REQUIRED_STR,
    version=Rule("date", required=True, enum=(MANIFEST_VERSION,)),
    enable_stack_set_deletion=Rule("bool"),
    resources=_seq(
        _map(
            True,  # noqa: FBT003 - an entry of the list may not be empty
            name=_REQUIRED_STR,
            description=_STR,
            resource_file=_REQUIRED_STR,
            deployment_targets=_map(
                True,  # noqa: FBT003
                accounts=_seq(Rule("any")),
                organizational_units=_seq(_STR),
            ),
            parameter_file=_STR,
            parameters=_seq(
                _map(
                    True,  # noqa: FBT003
                    parameter_key=_REQUIRED_STR,
                    parameter_value=Rule("any", required=True),
                )
            ),
            deploy_method=Rule("str", required=True, enum=("scp", "stack_set", "rcp")),
            regions=_seq(Rule("str", unique=True)),
            export_outputs=_seq(_map(True, name=_REQUIRED_STR, value=_REQUIRED_STR)),  # noqa: FBT003
        )
    ),
)
"""CfCT's manifest (v2, 2021-03-15): field names, types, which are required, the enums."""


def as_schema(rule: Rule) -> dict[str, Any]:
    """The rule written as a pykwalify schema, to compare with CfCT's own."""
    schema: dict[str, Any] = {"type": rule.kind}
    if rule.required:
        schema["required"] = True
    if rule.enum:
        schema["enum"] = list(rule.enum)
    if rule.unique:
        schema["unique"] = True
    if rule.kind == "map":
        schema["mapping"] = {name: as_schema(sub) for name, sub in rule.fields.items()}
    if rule.item is not None:
        schema["sequence"] = [as_schema(rule.item)]
    return schema


# --- problems ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong: where (file, field) and the rule it breaks."""

    file: str
    where: str
    rule: str

    def __str__(self) -> str:
        return (
            f"{self.file}: {self.where}: {self.rule}" if self.where else f"{self.file}: {self.rule}"
        )


_IS_KIND: dict[str, Callable[[object], bool]] = {
    "map": lambda v: isinstance(v, dict),
    "seq": lambda v: isinstance(v, list),
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "date": lambda v: isinstance(v, datetime.date) and not isinstance(v, datetime.datetime),
    "any": lambda _v: True,
}


def _shape_problems(value: object, rule: Rule, where: str) -> Iterator[tuple[str, str]]:
    """What breaks ``rule`` in ``value``, as (field, rule) pairs, as pykwalify judges."""
    if not _IS_KIND[rule.kind](value):
        hint = " (unquoted, e.g. 2021-03-15)" if rule.kind == "date" else ""
        yield where, f"must be a {_KIND_NAMES[rule.kind]}{hint}, not {_describe(value)}"
        return
    if rule.enum and value not in rule.enum:
        allowed = ", ".join(str(option) for option in rule.enum)
        yield where, f"must be one of: {allowed} (is {value})"
    if isinstance(value, dict):
        yield from _mapping_problems(value, rule, where)
    elif isinstance(value, list) and rule.item is not None:
        yield from _sequence_problems(value, rule.item, where)


def _mapping_problems(value: dict[Any, Any], rule: Rule, where: str) -> Iterator[tuple[str, str]]:
    for name in value:
        if name not in rule.fields:
            yield _join(where, str(name)), f"is not a field here (fields: {', '.join(rule.fields)})"
    for name, sub in rule.fields.items():
        if value.get(name) is not None:
            yield from _shape_problems(value[name], sub, _join(where, name))
        elif sub.required:
            yield _join(where, name), "is required"


def _sequence_problems(value: list[Any], item_rule: Rule, where: str) -> Iterator[tuple[str, str]]:
    seen: set[object] = set()
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        if item is None:
            if item_rule.required:
                yield at, "must not be empty"
            continue
        if item_rule.unique and _hashable(item) in seen:
            yield at, f"{item} is listed twice"
        seen.add(_hashable(item))
        yield from _shape_problems(item, item_rule, at)


_KIND_NAMES = {
    "map": "mapping",
    "seq": "list",
    "str": "string",
    "bool": "boolean (true or false)",
    "date": "date",
    "any": "value",
}


def _describe(value: object) -> str:
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"{type(value).__name__} {value!r}" if value is not None else "empty"


def _hashable(value: object) -> object:
    return json.dumps(value, sort_keys=True, default=str)


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def manifest_problems(manifest: object) -> list[tuple[str, str]]:
    """What in a loaded manifest breaks CfCT's manifest rules, as (field, rule) pairs."""
    return list(_shape_problems(manifest, MANIFEST_RULES, ""))


# --- beyond the schema: names AWS must know -------------------------------------------------


def known_regions() -> frozenset[str]:
    """Every region of every partition botocore knows CloudFormation in."""
    session = botocore.session.get_session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("cloudformation", partition_name=partition)
    )


_ACCOUNT_ID = re.compile(r"[0-9]{12}", re.ASCII)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+", re.ASCII)


def ou_problem(name: str) -> str | None:
    """Why ``name`` is not an OU as CfCT names one (``Parent:Child`` when nested), or None."""
    levels = name.split(":")
    if any(level == "" for level in levels):
        return f"{name!r} has an empty level: nested OUs are written Parent:Child"
    for level in levels:
        if level != level.strip():
            return f"{name!r}: the OU name {level!r} starts or ends with a space"
        if len(level) > OU_NAME_LIMIT:
            return f"{name!r}: an OU name is at most {OU_NAME_LIMIT} characters"
    return None


def _target_problems(resource: Mapping[str, Any], where: str) -> Iterator[tuple[str, str]]:
    targets = resource.get("deployment_targets") or {}
    for index, ou in enumerate(targets.get("organizational_units") or []):
        if isinstance(ou, str) and (problem := ou_problem(ou)):
            yield f"{where}.deployment_targets.organizational_units[{index}]", problem
    for index, account in enumerate(targets.get("accounts") or []):
        text = str(account)
        if not (_ACCOUNT_ID.fullmatch(text) or _EMAIL.fullmatch(text)):
            yield (
                f"{where}.deployment_targets.accounts[{index}]",
                f"{text!r} is neither a 12-digit account id nor an account's e-mail address",
            )
    if not targets.get("organizational_units") and not targets.get("accounts"):
        yield f"{where}.deployment_targets", "names no OU and no account: nothing is deployed"


def regions_of(manifest: Mapping[str, Any], resource: Mapping[str, Any]) -> list[str]:
    """The regions a resource deploys to: its own list, else CfCT's home region."""
    regions = resource.get("regions")
    return [str(r) for r in regions] if regions else [str(manifest.get("region"))]


def organization_ous(client: Any) -> set[str]:
    """Every OU of the organisation, written as CfCT writes it (``Parent:Child``)."""
    found: set[str] = set()
    pages = client.get_paginator("list_organizational_units_for_parent")
    pending = [(root["Id"], "") for root in client.list_roots()["Roots"]]
    while pending:
        parent, path = pending.pop()
        for page in pages.paginate(ParentId=parent):
            for unit in page["OrganizationalUnits"]:
                name = f"{path}:{unit['Name']}" if path else unit["Name"]
                found.add(name)
                pending.append((unit["Id"], name))
    return found


def missing_ou_problems(config: Path, ous: set[str]) -> list[Problem]:
    """The OU targets the organisation lacks: CfCT would deploy nothing there, silently."""
    manifest = yaml.safe_load((config / MANIFEST).read_text(encoding="utf-8"))
    problems = []
    for index, resource in enumerate(manifest.get("resources") or []):
        targets = (resource or {}).get("deployment_targets") or {}
        for position, ou in enumerate(targets.get("organizational_units") or []):
            if str(ou) not in ous and str(ou) != "Root":
                problems.append(
                    Problem(
                        _shown(config / MANIFEST),
                        f"resources[{index}].deployment_targets.organizational_units[{position}]",
                        f"{ou!r} is not an OU of this organisation: no account would get the stack",
                    )
                )
    return problems


# --- the whole configuration ---------------------------------------------------------------


def config_file(config: Path, relative: str) -> Path | None:
    """The file a manifest names: in the configuration folder, else in this project."""
    if Path(relative).is_absolute() or ".." in Path(relative).parts:
        return None
    for root in (config, REPO_ROOT):
        if (root / relative).is_file():
            return root / relative
    return None


def check(config: Path) -> list[Problem]:
    """Every problem of the configuration in the folder ``config``."""
    manifest_path = config / MANIFEST
    shown = _shown(manifest_path)
    if not manifest_path.is_file():
        return [Problem(shown, "", "missing: a configuration folder holds manifest.yaml")]
    try:
        manifest = yaml.safe_load(manifest_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        return [Problem(shown, "", f"is not YAML: {error}".replace("\n", " "))]
    problems = [Problem(shown, where, rule) for where, rule in manifest_problems(manifest)]
    if not isinstance(manifest, dict):
        return problems
    regions = known_regions()
    if isinstance(manifest.get("region"), str) and manifest["region"] not in regions:
        problems.append(Problem(shown, "region", f"{manifest['region']!r} is not an AWS region"))
    listed = manifest.get("resources")
    resources: list[Any] = listed if isinstance(listed, list) else []
    names: set[str] = set()
    for index, resource in enumerate(resources):
        if not isinstance(resource, dict):
            continue
        where = f"resources[{index}]"
        if resource.get("name") in names:
            problems.append(Problem(shown, f"{where}.name", f"{resource['name']!r} is used twice"))
        names.add(str(resource.get("name")))
        problems += [Problem(shown, w, r) for w, r in _target_problems(resource, where)]
        for position, region in enumerate(resource.get("regions") or []):
            if isinstance(region, str) and region not in regions:
                problems.append(
                    Problem(
                        shown, f"{where}.regions[{position}]", f"{region!r} is not an AWS region"
                    )
                )
        problems += _resource_file_problems(config, manifest, resource, where)
    return problems


def _resource_file_problems(
    config: Path, manifest: Mapping[str, Any], resource: Mapping[str, Any], where: str
) -> list[Problem]:
    shown = _shown(config / MANIFEST)
    problems: list[Problem] = []
    named = resource.get("resource_file")
    template_path = config_file(config, named) if isinstance(named, str) else None
    if isinstance(named, str) and template_path is None:
        problems.append(
            Problem(shown, f"{where}.resource_file", f"{named}: no such file in the package")
        )
    if resource.get("parameter_file") is not None and resource.get("parameters") is not None:
        problems.append(Problem(shown, where, "give parameter_file or parameters, not both"))
    given, parameters_shown, parameter_problems_found = _given_parameters(config, resource, where)
    problems += parameter_problems_found
    if resource.get("deploy_method") != "stack_set" or template_path is None:
        return problems
    try:
        template = load_template(template_path.read_text(encoding="utf-8"))
    except Exception as error:  # noqa: BLE001 - cfn-lint's decoder raises many kinds
        problems.append(Problem(_shown(template_path), "", f"is not a template: {error}"))
        return problems
    if given is None:
        return problems
    problems += [
        Problem(parameters_shown, key, rule) for key, rule in parameter_problems(template, given)
    ]
    if named == CONNECTOR_TEMPLATE:
        problems += _connector_region_problems(manifest, resource, given, parameters_shown)
    return problems


def _given_parameters(
    config: Path, resource: Mapping[str, Any], where: str
) -> tuple[dict[str, str] | None, str, list[Problem]]:
    """The parameters a resource passes, where they are written, and what is wrong with them."""
    shown = _shown(config / MANIFEST)
    if isinstance(resource.get("parameters"), list):
        pairs = {
            str(p.get("parameter_key")): _text(p.get("parameter_value"))
            for p in resource["parameters"]
            if isinstance(p, dict)
        }
        return pairs, f"{shown} {where}.parameters", []
    named = resource.get("parameter_file")
    if not isinstance(named, str):
        return {}, shown, []
    path = config_file(config, named)
    if path is None:
        return None, shown, [Problem(shown, f"{where}.parameter_file", f"{named}: no such file")]
    file_shown = _shown(path)
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        return None, file_shown, [Problem(file_shown, "", f"is not JSON: {error}")]
    if not isinstance(loaded, list) or not all(
        isinstance(p, dict)
        and set(p) == {"ParameterKey", "ParameterValue"}
        and all(isinstance(v, str) for v in p.values())
        for p in loaded
    ):
        rule = 'must be a JSON list of {"ParameterKey": "...", "ParameterValue": "..."} strings'
        return None, file_shown, [Problem(file_shown, "", rule)]
    keys = [p["ParameterKey"] for p in loaded]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    problems = [Problem(file_shown, key, "is given twice") for key in twice]
    return {p["ParameterKey"]: p["ParameterValue"] for p in loaded}, file_shown, problems


def _connector_region_problems(
    manifest: Mapping[str, Any],
    resource: Mapping[str, Any],
    given: Mapping[str, str],
    shown: str,
) -> list[Problem]:
    regions = regions_of(manifest, resource)
    chosen = given.get(CONNECTOR_REGION, "")
    if chosen and chosen not in regions:
        return [
            Problem(
                shown,
                CONNECTOR_REGION,
                f"{chosen} is not one of the resource's regions ({', '.join(regions)}):"
                " no account would get a connector",
            )
        ]
    if not chosen and len(regions) > 1:
        return [
            Problem(
                shown,
                CONNECTOR_REGION,
                f"must name one of {', '.join(regions)}: the StackSet targets several regions,"
                " and each would make the account another connector",
            )
        ]
    return []


def _text(value: object) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point: print each problem; 1 if there is any."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config",
        type=Path,
        default=EXAMPLE,
        help="the configuration folder (manifest.yaml, parameters/); default: the example",
    )
    parser.add_argument(
        "--organization",
        action="store_true",
        help="also check that every OU target exists (reads AWS Organizations: run it with"
        " credentials of the management account or a delegated administrator)",
    )
    args = parser.parse_args(argv)
    problems = check(args.config)
    if args.organization and not problems:
        client = boto3.client("organizations")
        problems = missing_ou_problems(args.config, organization_ous(client))
    for problem in problems:
        sys.stdout.write(f"{problem}\n")
    if problems:
        sys.stdout.write(f"{len(problems)} problem(s) in {_shown(args.config)}\n")
        return 1
    sys.stdout.write(f"{_shown(args.config)}: the CfCT configuration passes every check\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
