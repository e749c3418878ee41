"""The Mixpanel element: everything the platform knows about Mixpanel is in this folder."""

from elements.framework.authentication import BasicAuthentication
from elements.framework.definition import ConfigField, Element, ElementObject, ObjectField
from elements.mixpanel import events, profiles, service_accounts, transform_paths
from elements.mixpanel.bulk import ActivitiesSource, ServiceAccountsSource, UsersSource
from elements.mixpanel.vendor import hosts, verify

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
    ElementObject(
        name="activities",
        description="Events tracked or imported into Mixpanel.",
        bulk=ActivitiesSource(),
        write_path=transform_paths.event_write_path,
        where_field=transform_paths.event_where_field,
        fields=(
            ObjectField("id", "string", "The event's $insert_id (its primary key)."),
            ObjectField("event", "string", "Event name."),
            ObjectField("properties.time", "number", "Seconds (or ms) since the epoch, UTC."),
            ObjectField("properties.distinct_id", "string", "Who did it."),
            ObjectField("properties.$insert_id", "string", "Deduplication key."),
            ObjectField("properties", "object", "Any other event properties."),
        ),
    ),
    ElementObject(
        name="users",
        description="User profiles (Mixpanel engage).",
        bulk=UsersSource(),
        write_path=transform_paths.profile_write_path,
        where_field=transform_paths.profile_where_field,
        fields=(
            ObjectField("id", "string", "The profile's $distinct_id (its primary key)."),
            ObjectField("$distinct_id", "string", "The profile's id."),
            ObjectField("$properties.$email", "string"),
            ObjectField("$properties.$city", "string"),
            ObjectField("$properties.$created", "string"),
            ObjectField("$properties.$last_seen", "string"),
            ObjectField("$properties", "object", "Any other profile properties."),
        ),
    ),
    ElementObject(
        name="service-accounts",
        description="The organization's service accounts.",
        bulk=ServiceAccountsSource(),
        fields=(
            ObjectField("id", "integer"),
            ObjectField("username", "string"),
            ObjectField("last_used", "string"),
            ObjectField("expires", "string"),
            ObjectField("creator", "integer"),
            ObjectField("created", "string"),
        ),
    ),
)

OPERATIONS = service_accounts.OPERATIONS + profiles.OPERATIONS + events.OPERATIONS

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
    # Service account: username and secret; an API secret alone: the username, no password.
    authentication=BasicAuthentication(username_key="username", password_key="password"),
    configuration=CONFIGURATION,
    operations=OPERATIONS,
    objects=OBJECTS,
    hosts=hosts,
    verify=verify,
    docs_url="https://developer.mixpanel.com/",
)
