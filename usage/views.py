"""The usage log's hook into views: every element call is logged (contract §7), whichever
view answers it (resource style, operation style, bulk)."""

import time

from elements.framework.registry import element_by_key
from usage.services import usage_record_call


class UsageLoggedMixin:
    """For DRF views authenticated by ``ElementAuthentication``.

    Views fill in ``self.operation`` (an Operation, when one ran), ``self.inputs`` and
    ``self.configuration`` (for traced bodies) and ``self.vendor_status`` as they learn them;
    ``usage_operation`` names the call when no element operation does (bulk endpoints).
    """

    usage_operation = ""

    def initial(self, request, *args, **kwargs):
        self.started = time.perf_counter()
        self.operation = self.inputs = self.configuration = None
        self.vendor_status = None
        super().initial(request, *args, **kwargs)

    def handle_exception(self, exc):
        self.vendor_status = getattr(exc, "provider_status", None)
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        auth = getattr(request, "auth", None)
        if auth is not None:  # calls that never authenticated belong to no one's log
            instance = auth.instance
            started = getattr(self, "started", time.perf_counter())
            usage_record_call(
                request_id=request.request_id,
                user_id=instance.user_id,
                instance=instance,
                element=element_by_key(instance.element_key),
                operation=getattr(self, "operation", None),
                operation_name=self.usage_operation,
                method=request.method,
                path=request.path,
                status=response.status_code,
                vendor_status=getattr(self, "vendor_status", None),
                duration_ms=(time.perf_counter() - started) * 1000,
                configuration=getattr(self, "configuration", None),
                request_body=getattr(self, "inputs", None),
                response_body=getattr(response, "data", None),
            )
        return response
