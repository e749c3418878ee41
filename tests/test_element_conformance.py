"""The element conformance suite (elements/framework/testing.py) for every element in the
registry: a new element folder is tested here without a line added.
One element: ``bash scripts/test.sh tests/test_element_conformance.py -k <key>``."""

import pytest

from elements.framework.registry import all_elements
from elements.framework.testing import ElementConformance

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture(params=all_elements(), ids=lambda element: element.key)
def element(request):
    return request.param


class TestElementConformance(ElementConformance):
    pass
