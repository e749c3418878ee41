"""The Mixpanel element: everything the platform knows about Mixpanel is in this folder."""

from elements.framework.authentication import BasicAuthentication
from elements.framework.definition import ConfigField, Element, ElementObject, ObjectField
from elements.mixpanel import (
    annotations,
    cohorts,
    events,
    groups,
    identities,
    lookup_tables,
    privacy,
    profiles,
    queries,
    service_accounts,
)
from elements.mixpanel.bulk import ActivitiesSource, ServiceAccountsSource, UsersSource
from elements.mixpanel.pollers import POLLING
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
    ConfigField(
        key="data_groups",
        name="Data groups",
        type="integer_map",
        description=(
            'Group key name to Mixpanel data_group_id (Project Settings), e.g. {"company_id": '
            "-1405123841946871899}; needed to query group profiles. A JSON object or its text."
        ),
    ),
    ConfigField(
        key="gdpr_token",
        name="GDPR OAuth token",
        secret=True,
        description="OAuth token with the GDPR scope (Data & Privacy); for privacy requests.",
    ),
)

OBJECTS = (
    ElementObject(
        name="activities",
        description="Events tracked or imported into Mixpanel.",
        bulk=ActivitiesSource(),
        primary_key="properties.$insert_id",
        cursor_field="properties.time",
        cursor_aliases=("time",),
        fields=(
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
        primary_key="$distinct_id",
        cursor_field="$properties.$last_seen",
        cursor_aliases=("$last_seen",),
        fields=(
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
        primary_key="id",
        cursor_field="created",
        fields=(
            ObjectField("id", "integer"),
            ObjectField("username", "string"),
            ObjectField("last_used", "string"),
            ObjectField("expires", "string"),
            ObjectField("creator", "integer"),
            ObjectField("created", "string"),
        ),
    ),
    ElementObject(
        name="groups",
        description="Group profiles (Group Analytics), one set per group key.",
        fields=(
            ObjectField("$group_key", "string", "The group key's name, e.g. company_id."),
            ObjectField("$group_id", "string", "The group's id."),
            ObjectField("$properties", "object", "The group profile's properties."),
        ),
    ),
    ElementObject(
        name="privacy-requests",
        description="GDPR/CCPA data deletion and data retrieval requests.",
        fields=(
            ObjectField("task_id", "string", "Mixpanel's tracking id of the request."),
            ObjectField("status", "string", "PENDING, STAGING, STARTED, SUCCESS, FAILURE..."),
            ObjectField("distinct_ids", "array", "Whose data."),
            ObjectField("compliance_type", "string", "GDPR or CCPA."),
        ),
    ),
    ElementObject(
        name="cohorts",
        description="Saved groups of user profiles (events: CREATED, UPDATED, DELETED).",
        primary_key="id",
        fields=(
            ObjectField("id", "integer"),
            ObjectField("name", "string"),
            ObjectField("description", "string"),
            ObjectField("count", "integer", "Members now."),
            ObjectField("is_visible", "integer"),
            ObjectField("created", "string", "YYYY-MM-DD HH:MM:SS"),
        ),
    ),
    ElementObject(
        name="annotations",
        description="Notes on the project's charts (events: CREATED, UPDATED, DELETED).",
        primary_key="id",
        fields=(
            ObjectField("id", "integer"),
            ObjectField("date", "string", "YYYY-MM-DD HH:MM:SS, the project's time."),
            ObjectField("description", "string"),
            ObjectField("tags", "array"),
        ),
    ),
)

OPERATIONS = service_accounts.OPERATIONS + profiles.OPERATIONS + events.OPERATIONS
OPERATIONS += queries.OPERATIONS
OPERATIONS += cohorts.OPERATIONS + annotations.OPERATIONS
OPERATIONS += identities.OPERATIONS + lookup_tables.OPERATIONS
OPERATIONS += groups.OPERATIONS + privacy.OPERATIONS

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
    events_supported=True,
    polling=POLLING,
)
