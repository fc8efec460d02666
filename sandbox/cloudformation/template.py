"""Reading a stack's template: references, dependency order, custom types, resolved properties."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from moto.cloudformation.parsing import ResourceMap, clean_json

_SUB_REFERENCE = re.compile(r"\$\{(?!!)([^}]+)\}")


def references(node: Any) -> set[str]:
    """Names a template fragment refers to through Ref, GetAtt and Sub."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                target = value.split(".")[0] if isinstance(value, str) else value[0]
                found.add(str(target))
            elif key == "Fn::Sub":
                text, local = (value, {}) if isinstance(value, str) else (value[0], value[1])
                found |= {name.split(".")[0] for name in _SUB_REFERENCE.findall(text)}
                found -= set(local)
                found |= references(local)
            else:
                found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


def dependency_order(template: Mapping[str, Any]) -> list[str]:
    """The template's resources, each after everything it depends on (template order kept)."""
    resources: Mapping[str, Any] = template.get("Resources", {})
    depends: dict[str, set[str]] = {}
    for name, body in resources.items():
        explicit = body.get("DependsOn", [])
        names = {explicit} if isinstance(explicit, str) else set(explicit)
        depends[name] = (references(body) | names) & set(resources) - {name}
    ordered: list[str] = []
    remaining = dict(depends)
    while remaining:
        ready = [n for n, needs in remaining.items() if needs <= set(ordered)]
        if not ready:
            raise ValueError(f"circular dependency between {sorted(remaining)}")
        ordered.extend(ready)
        for name in ready:
            del remaining[name]
    return ordered


def is_custom(resource_type: str) -> bool:
    """Whether CloudFormation hands this resource type to a provider."""
    return resource_type.startswith("Custom::") or (
        resource_type == "AWS::CloudFormation::CustomResource"
    )


def resolved_properties(template: Mapping[str, Any], name: str, resource_map: ResourceMap) -> Any:
    """A resource's properties with intrinsic functions resolved against ``resource_map``."""
    properties = copy.deepcopy(template["Resources"][name].get("Properties", {}))
    return clean_json(properties, resource_map)
