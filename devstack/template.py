"""Reads template.yaml (CloudFormation/SAM with short-form intrinsics) and resolves values for the local stack.

The local stack is driven by this file alone: tables, keys, queues, parameters, functions, routes,
the authorizer, gateway responses and event source mappings all come from template.yaml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"


class _Loader(yaml.SafeLoader):
    pass


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    if tag_suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{tag_suffix}": value}


_Loader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open() as fh:
        return yaml.load(fh, Loader=_Loader)  # noqa: S506  # nosec B506  # a SafeLoader subclass (intrinsic tags only)


@dataclass
class Resolver:
    """Evaluates intrinsic functions against parameters and the local physical resources."""

    template: dict[str, Any]
    parameters: dict[str, Any] = field(default_factory=dict)
    refs: dict[str, Any] = field(default_factory=dict)
    attributes: dict[tuple[str, str], Any] = field(default_factory=dict)
    region: str = "us-east-1"
    account_id: str = "123456789012"
    stack_name: str = "link-zoom-local"

    def __post_init__(self) -> None:
        for name, spec in (self.template.get("Parameters") or {}).items():
            self.parameters.setdefault(name, spec.get("Default", ""))

    def pseudo(self, name: str) -> Any:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::Partition": "aws",
            "AWS::NoValue": None,
            "AWS::URLSuffix": "amazonaws.com",
        }.get(name)

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.parameters:
            value = self.parameters[name]
            spec = self.template["Parameters"][name]
            if spec.get("Type") == "CommaDelimitedList" and isinstance(value, str):
                return [v for v in value.split(",")] if value else [""]
            return value
        return self.refs.get(name, name)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._function(key[4:], arg)
        return {k: self.resolve(v) for k, v in value.items()}

    def _function(self, name: str, arg: Any) -> Any:
        intrinsic = getattr(self, f"_fn_{name.lower()}", None)
        if intrinsic is None:
            raise ValueError(f"unsupported intrinsic Fn::{name}")
        return intrinsic(arg)

    def _fn_getatt(self, arg: Any) -> Any:
        logical, attribute = arg
        return self.attributes.get((logical, attribute), f"{logical}.{attribute}")

    def _fn_sub(self, arg: Any) -> str:
        text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def substitute(match: re.Match[str]) -> str:
            key = match.group(1)
            if key in extra:
                return str(extra[key])
            if "." in key:
                logical, attribute = key.split(".", 1)
                return str(self.attributes.get((logical, attribute), key))
            return str(self.ref(key))

        return re.sub(r"\$\{([^}!]+)\}", substitute, text)

    def _fn_if(self, arg: Any) -> Any:
        condition, when_true, when_false = arg
        return self.resolve(when_true if self.condition(condition) else when_false)

    def _fn_not(self, arg: Any) -> bool:
        return not self.resolve(arg[0])

    def _fn_equals(self, arg: Any) -> bool:
        left, right = self.resolve(arg)
        return bool(left == right)

    def _fn_and(self, arg: Any) -> bool:
        return all(self.resolve(arg))

    def _fn_or(self, arg: Any) -> bool:
        return any(self.resolve(arg))

    def _fn_join(self, arg: Any) -> str:
        separator, items = arg
        return str(separator).join(str(i) for i in self.resolve(items))

    def _fn_split(self, arg: Any) -> list[str]:
        separator, text = arg
        return str(self.resolve(text)).split(separator)

    def _fn_select(self, arg: Any) -> Any:
        index, items = arg
        return self.resolve(items)[int(self.resolve(index))]


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: spec for name, spec in (template.get("Resources") or {}).items() if spec.get("Type") == resource_type}
