"""What the conformance suite needs from the example element."""

CONFIGURATION = {"api_key": "example-api-key", "account": 7}

# What the fake vendor answers for the record checks (every record carries its ``id``).
VENDOR_RECORDS = [("GET", "/v1/widgets", [{"id": 1, "name": "Sprocket"}])]
