"""Configuration an operation needs, checked before any vendor call.

An operation declares what it needs beyond the element's required fields
(``Operation(requires_configuration=("project_token",))``, or a ``ConfigurationNeed`` whose
``missing`` rule says "one of" or "only with a service account"). A call on an instance that
lacks it is a 400 naming each missing field and showing the ``PATCH`` that adds it, so the
caller can fix the instance without reading the docs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from elements.framework.definition import ConfigurationNeed, Element, ElementObject, Operation
from platform_core.exceptions import ValidationFailed

INSTANCES_PATH = "/elements/api-v2/instances"


def missing_configuration(
    op: Operation | tuple[ConfigurationNeed, ...], configuration: Mapping, inputs: Mapping
) -> dict[str, ConfigurationNeed]:
    """The configuration fields the instance should add for ``op`` (or for these needs), in
    declaration order, each with the need that wants it."""
    needs = op.configuration_needs if isinstance(op, Operation) else op
    missing: dict[str, ConfigurationNeed] = {}
    for need in needs:
        for key in need.missing_fields(configuration, inputs):
            missing.setdefault(key, need)
    return missing


def patch_hint(
    element: Element,
    instance_id: int,
    missing: Mapping[str, ConfigurationNeed],
    *,
    configuration: Mapping,
    inputs: Mapping,
) -> str:
    """``PATCH /elements/api-v2/instances/12 {"configuration": {"project_token": "<...>"}}``"""
    example = {}
    for key, need in missing.items():
        shown = need.example(configuration, inputs) if need.example else {}
        config_field = element.config_field(key)
        example[key] = shown.get(key, f"<{config_field.name if config_field else key}>")
    body = json.dumps({"configuration": example})
    return f"PATCH {INSTANCES_PATH}/{instance_id} {body}"


def _named(key: str, need: ConfigurationNeed) -> str:
    """The field, with the rule that wants it when the rule says more than its name."""
    return key if need.missing is None else f"{key} ({need.description})"


def check_configuration(
    element: Element, op: Operation, *, instance_id: int, configuration: Mapping, inputs: Mapping
) -> None:
    """400 unless the instance's configuration has what ``op`` needs."""
    _refuse_missing(
        element,
        op.name or op.id,
        missing_configuration(op, configuration, inputs),
        instance_id=instance_id,
        configuration=configuration,
        inputs=inputs,
    )


def check_bulk_configuration(
    element: Element, obj: ElementObject, *, instance_id: int, configuration: Mapping
) -> None:
    """400 unless the instance's configuration has what a bulk job of ``obj`` needs: the same
    check and answer as an element call's, when the job is submitted rather than when it runs."""
    _refuse_missing(
        element,
        f"A bulk job of {obj.name}",
        missing_configuration(obj.bulk_configuration_needs, configuration, {}),
        instance_id=instance_id,
        configuration=configuration,
        inputs={},
    )


def _refuse_missing(
    element: Element,
    operation: str,
    missing: Mapping[str, ConfigurationNeed],
    *,
    instance_id: int,
    configuration: Mapping,
    inputs: Mapping,
) -> None:
    if not missing:
        return
    hint = patch_hint(element, instance_id, missing, configuration=configuration, inputs=inputs)
    needs = "; ".join(_named(key, need) for key, need in missing.items())
    raise ValidationFailed(
        f"{operation} needs configuration that instance {instance_id} does not have: {needs}. "
        f"Add it with: {hint}",
        errors=[
            {
                "field": f"configuration.{key}",
                "message": f"{operation} needs {_named(key, need)}; add it with {hint}",
            }
            for key, need in missing.items()
        ],
    )


def needs_representation(op: Operation | ElementObject) -> list[dict]:
    """What the catalog, the metadata and the OpenAPI document say an operation (or a bulk job
    of an object) needs."""
    needs = op.configuration_needs if isinstance(op, Operation) else op.bulk_configuration_needs
    return [need.representation() for need in needs]
