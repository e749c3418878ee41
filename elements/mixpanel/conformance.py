"""What the element conformance suite (elements/framework/testing.py) needs from Mixpanel: a valid
configuration with every secret field filled. The suite never sends it to Mixpanel."""

CONFIGURATION = {
    "username": "conformance.sa-user.mp-service-account",
    "password": "conformance-sa-secret",
    "organization_id": 1001,
    "project_id": 2002,
    "project_token": "conformance-project-token",
    "gdpr_token": "conformance-gdpr-token",
    "event.notification.signature.key": "conformance-signing-key",
}
