"""Finds the elements: every package under ``elements/`` (other than the framework) that
exposes an ``ELEMENT``. Adding an element is adding a folder.

Registering an element gives it the operations every element has (``common.py``: ``/ping``,
``/objects``, ``/objects/{name}/metadata``); the definition module itself knows nothing of
them, so ``definition`` and ``common`` do not import each other."""

import importlib
import pkgutil
from functools import cache

import elements
from elements.framework.common import common_operations
from elements.framework.definition import Element

_NOT_ELEMENTS = {"framework", "migrations", "management", "tests", "templates"}


@cache
def all_elements() -> tuple[Element, ...]:
    found = []
    for module in pkgutil.iter_modules(elements.__path__):
        if not module.ispkg or module.name in _NOT_ELEMENTS:
            continue
        package = importlib.import_module(f"elements.{module.name}")
        element = getattr(package, "ELEMENT", None)
        if isinstance(element, Element):
            found.append(register(element))
    found.sort(key=lambda e: e.key)
    keys = [e.key for e in found]
    ids = [e.id for e in found]
    if len(set(keys)) != len(keys) or len(set(ids)) != len(ids):
        raise RuntimeError("Two element folders declare the same key or id")
    return tuple(found)


def register(element: Element) -> Element:
    """``element`` with the common operations (added once; an element built outside a folder,
    e.g. in a test, is registered by calling this)."""
    if element.operation("ping") is None:
        element.add_operations(common_operations())
    return element


def element_by_key_or_id(key_or_id: str) -> Element | None:
    for element in all_elements():
        if element.key == key_or_id or str(element.id) == key_or_id:
            return element
    return None


def element_by_key(key: str) -> Element | None:
    return next((e for e in all_elements() if e.key == key), None)
