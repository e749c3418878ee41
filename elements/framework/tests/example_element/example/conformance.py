"""What the conformance suite needs from the example element."""

CONFIGURATION = {"api_key": "example-api-key", "account": 7}
