"""The usage log's hook into views: every element call is logged (contract §7), whichever
view answers it (resource style and operation style in ``elements/api.py``, bulk through
``UsageLoggedMixin``)."""

import time
from dataclasses import dataclass
from typing import Any

from elements.framework.registry import element_by_key
from platform_core.metrics import count_element_call
from usage.services import usage_record_call


@dataclass
class CallLog:
    """What a view learns about an element call as it runs, for its usage record:
    the Operation (when one ran), its inputs and the configuration (for traced bodies), the
    vendor's status and the response body. ``operation_name`` names the call when no element
    operation does (bulk endpoints)."""

    operation: Any = None
    operation_name: str = ""
    inputs: dict | None = None
    configuration: dict | None = None
    vendor_status: int | None = None
    response_body: Any = None


def record_element_call(request, instance, call: CallLog, status: int, started: float) -> None:
    """The call's usage record and its count in the metrics (``GET /metrics``)."""
    operation = call.operation
    count_element_call(
        instance.element_key,
        (operation.name or operation.id) if operation else (call.operation_name or "none"),
        status,
    )
    usage_record_call(
        request_id=request.request_id,
        user_id=instance.user_id,
        instance=instance,
        element=element_by_key(instance.element_key),
        operation=call.operation,
        operation_name=call.operation_name,
        method=request.method,
        path=request.path,
        status=status,
        vendor_status=call.vendor_status,
        duration_ms=(time.perf_counter() - started) * 1000,
        configuration=call.configuration,
        request_body=call.inputs,
        response_body=call.response_body,
    )


class UsageLoggedMixin:
    """For DRF views authenticated by ``ElementAuthentication``.

    Views fill in ``self.call`` (a CallLog) as they learn what it holds; ``usage_operation``
    names the call when no element operation does.
    """

    usage_operation = ""

    def initial(self, request, *args, **kwargs):
        self.started = time.perf_counter()
        self.call = CallLog(operation_name=self.usage_operation)
        super().initial(request, *args, **kwargs)

    # DRF runs ``initial`` first inside its error handling, so ``self.call`` exists below.
    def handle_exception(self, exc):
        self.call.vendor_status = getattr(exc, "provider_status", None)
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        auth = getattr(request, "auth", None)
        if auth is not None:  # calls that never authenticated belong to no one's log
            self.call.response_body = getattr(response, "data", None)
            record_element_call(
                request, auth.instance, self.call, response.status_code, self.started
            )
        return response
