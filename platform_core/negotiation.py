"""Content negotiation: the API speaks JSON. A client whose Accept names something else (a
browser's text/html, say) still gets JSON rather than a 406; only endpoints that can produce
several formats (bulk downloads) answer 406, and they negotiate themselves."""

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation


class JSONFallbackNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        if len(renderers) == 1:  # nothing to choose between: skip parsing Accept
            return renderers[0], renderers[0].media_type
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            return renderers[0], renderers[0].media_type
