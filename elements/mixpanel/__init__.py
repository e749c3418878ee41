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
    needs,
    privacy,
    profiles,
    queries,
    service_accounts,
    transform_paths,
)
from elements.mixpanel.bulk import ActivitiesSource, ServiceAccountsSource, UsersSource
from elements.mixpanel.bulk_objects import (
    AnnotationsSource,
    CohortMembersSource,
    CohortsSource,
    FunnelsSource,
    GroupsSource,
    RevenueSource,
)
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
        bulk_requires_configuration=needs.QUERY,
        primary_key="properties.$insert_id",
        cursor_field="properties.time",
        cursor_aliases=("time",),
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
        bulk_requires_configuration=needs.QUERY,
        primary_key="$distinct_id",
        cursor_field="$properties.$last_seen",
        cursor_aliases=("$last_seen",),
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
        bulk_requires_configuration=needs.SERVICE_ACCOUNT_CALL,
        primary_key="id",
        cursor_field="created",
        fields=(
            ObjectField("id", "integer", "The service account's id (its primary key)."),
            ObjectField("username", "string"),
            ObjectField("last_used", "string"),
            ObjectField("expires", "string"),
            ObjectField("creator", "integer"),
            ObjectField("created", "string"),
        ),
    ),
    ElementObject(
        name="groups",
        description=(
            "Group profiles (Group Analytics), one set per group key; in bulk, those of every "
            "group key in data_groups."
        ),
        bulk=GroupsSource(),
        bulk_requires_configuration=(needs.DATA_GROUPS, needs.PROJECT_FOR_SERVICE_ACCOUNT),
        primary_key="$group_key,$group_id",
        cursor_field="$properties.$last_seen",
        cursor_aliases=("$last_seen",),
        fields=(
            ObjectField("id", "string", "$group_key:$group_id, e.g. company_id:acme."),
            ObjectField("$group_key", "string", "The group key's name, e.g. company_id."),
            ObjectField("$group_id", "string", "The group's id."),
            ObjectField("$properties", "object", "The group profile's properties."),
        ),
    ),
    ElementObject(
        name="cohorts",
        description="The project's cohorts.",
        bulk=CohortsSource(),
        bulk_requires_configuration=needs.QUERY,
        primary_key="id",
        cursor_field="created",
        fields=(
            ObjectField("id", "integer", "The cohort's id (its primary key)."),
            ObjectField("name", "string"),
            ObjectField("description", "string"),
            ObjectField("count", "integer", "Members."),
            ObjectField("is_visible", "integer", "1 or 0."),
            ObjectField("created", "string", "YYYY-MM-DD HH:MM:SS (UTC)."),
            ObjectField("project_id", "integer"),
        ),
    ),
    ElementObject(
        name="cohort-members",
        description="Each cohort's members (user profiles), with the cohort's id.",
        bulk=CohortMembersSource(),
        bulk_requires_configuration=needs.QUERY,
        primary_key="cohort_id,$distinct_id",
        cursor_field="$properties.$last_seen",
        cursor_aliases=("$last_seen",),
        fields=(
            ObjectField("id", "string", "cohort_id:$distinct_id, e.g. 7509:alice."),
            ObjectField("cohort_id", "integer", "The cohort."),
            ObjectField("$distinct_id", "string", "The member's profile id."),
            ObjectField("$properties", "object", "The profile's properties."),
            ObjectField("$properties.$last_seen", "string"),
        ),
    ),
    ElementObject(
        name="annotations",
        description="Annotations on the project's charts.",
        bulk=AnnotationsSource(),
        bulk_requires_configuration=needs.QUERY,
        primary_key="id",
        cursor_field="date",
        fields=(
            ObjectField("id", "integer", "The annotation's id (its primary key)."),
            ObjectField("date", "string", "YYYY-MM-DD HH:MM:SS."),
            ObjectField("description", "string"),
            ObjectField("user", "object", "Who made it (service-account instances)."),
            ObjectField("tags", "array", "Its tags (service-account instances)."),
        ),
    ),
    ElementObject(
        name="funnels",
        description="Each saved funnel's conversion per day of entry.",
        bulk=FunnelsSource(),
        bulk_requires_configuration=needs.QUERY,
        primary_key="funnel_id,date",
        cursor_field="date",
        cursor_granularity="day",
        fields=(
            ObjectField("id", "string", "funnel_id:date, e.g. 7:2026-11-30."),
            ObjectField("funnel_id", "integer"),
            ObjectField("name", "string", "The funnel's name."),
            ObjectField("date", "string", "The day of entry, YYYY-MM-DD."),
            ObjectField("steps", "array", "Per step: count, avg_time, conversion ratios..."),
            ObjectField("analysis", "object", "completion, starting_amount, steps, worst."),
        ),
    ),
    ElementObject(
        name="revenue",
        description="Revenue per day, from the profiles' $transactions.",
        bulk=RevenueSource(),
        bulk_requires_configuration=needs.QUERY,
        primary_key="date",
        cursor_field="date",
        cursor_granularity="day",
        fields=(
            ObjectField("id", "string", "The date (the primary key)."),
            ObjectField("date", "string", "YYYY-MM-DD."),
            ObjectField("amount", "number", "The day's revenue."),
            ObjectField("count", "integer", "Profiles."),
            ObjectField("paid_count", "integer", "Profiles with a transaction that day."),
        ),
    ),
    ElementObject(
        name="privacy-requests",
        description="GDPR/CCPA data deletion and data retrieval requests.",
        fields=(
            ObjectField("id", "string", "The task_id (the primary key)."),
            ObjectField("task_id", "string", "Mixpanel's tracking id of the request."),
            ObjectField("status", "string", "PENDING, STAGING, STARTED, SUCCESS, FAILURE..."),
            ObjectField("distinct_ids", "array", "Whose data."),
            ObjectField("compliance_type", "string", "GDPR or CCPA."),
        ),
    ),
    ElementObject(
        name="identities",
        description="Identity events: merging two distinct ids, aliasing one.",
        fields=(
            ObjectField("id", "string", "The identity event's $insert_id."),
            ObjectField("distinct_ids", "array", "The two ids a merge joins."),
            ObjectField("distinct_id", "string", "The id an alias maps to."),
            ObjectField("alias", "string"),
        ),
    ),
    ElementObject(
        name="lookup-tables",
        description="Lookup tables (created in Mixpanel's Lexicon), replaced whole from CSV.",
        fields=(
            ObjectField("id", "string", "The table's UUID (its primary key)."),
            ObjectField("name", "string"),
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
