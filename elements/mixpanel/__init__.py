"""The Mixpanel element: everything the platform knows about Mixpanel is in this folder."""

from elements.framework.definition import ConfigField, Element, ElementObject
from elements.mixpanel.operations import OPERATIONS, verify
from elements.mixpanel.vendor import hosts

CONFIGURATION = (
    ConfigField(
        key="username",
        name="Username or API secret",
        required=True,
        secret=True,
        description=(
            "The service-account username; or, used alone, the project's API secret "
            "(as in the Cloud Elements example)."
        ),
    ),
    ConfigField(
        key="password",
        name="Service-account secret",
        secret=True,
        description="The service account's secret. Leave out when username is the API secret.",
    ),
    ConfigField(
        key="organization_id",
        name="Organization id",
        type="integer",
        description="Mixpanel organization id (service-account management).",
    ),
    ConfigField(
        key="project_id",
        name="Project id",
        type="integer",
        description="Mixpanel project id; sent with service-account calls to query and import.",
    ),
    ConfigField(
        key="project_token",
        name="Project token",
        secret=True,
        description="The project token, for tracking events and updating profiles.",
    ),
    ConfigField(
        key="region",
        name="Data residency region",
        type="enum",
        choices=("US", "EU", "IN"),
        default="US",
        description="Which Mixpanel hosts to use: US (default), EU or IN.",
    ),
)

OBJECTS = (
    ElementObject(name="activities", description="Events tracked or imported into Mixpanel."),
    ElementObject(name="users", description="User profiles (Mixpanel engage)."),
    ElementObject(name="service-accounts", description="The organization's service accounts."),
)

ELEMENT = Element(
    id=13973,
    key="mixpanel",
    name="Mixpanel",
    description=(
        "Add a Mixpanel element to connect to your existing Mixpanel account, allowing you to "
        "create activities, users and download activities and users"
    ),
    image="https://uxcam.com/images/mixpanel-logo.png",
    hub="general",
    auth_type="basic",
    configuration=CONFIGURATION,
    operations=OPERATIONS,
    objects=OBJECTS,
    hosts=hosts,
    verify=verify,
    docs_url="https://developer.mixpanel.com/",
)
