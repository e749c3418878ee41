"""What each Mixpanel operation needs of the instance's configuration beyond ``username``
(reference §2 and part 2 §3, §6). Checked before any vendor call; a call on an instance that
lacks it is a 400 naming the field, with the ``PATCH /instances/{id}`` that adds it.

- Profile and group updates authenticate with the project token inside the update.
- Query, export and import calls with a service account need ``project_id``; the API secret
  alone (seed 002) names its project itself.
- Tracking sends the project token to ``/track``; without one the event goes to ``/import``,
  which takes the API secret (or a service account with ``project_id``).
- Service-account management needs a service account and an organization.
- Mixpanel's app API (annotations) and the lookup-table list take a service account only,
  with ``project_id``; the API secret alone may still list annotations (an older list).
- Group profile queries need the group key's ``data_group_id`` in ``data_groups``.
- Privacy requests need the GDPR OAuth token and the project token.

Bulk objects declare theirs too (``ElementObject.bulk_requires_configuration``), checked when a
job is submitted: the same needs as the operations they read through, and ``groups`` at least one
group key in ``data_groups``.
"""

from collections.abc import Mapping

from elements.framework.definition import ConfigurationNeed
from elements.mixpanel.vendor import uses_service_account

PROJECT_TOKEN = "project_token"
GDPR_TOKEN = "gdpr_token"


def _project_for_service_account(configuration: Mapping, inputs: Mapping) -> tuple[str, ...]:
    if uses_service_account(configuration) and not (
        configuration.get("project_id") or inputs.get("project_id")
    ):
        return ("project_id",)
    return ()


PROJECT_FOR_SERVICE_ACCOUNT = ConfigurationNeed(
    fields=("project_id",),
    description="project_id, when the instance uses a service account (username and password)",
    missing=_project_for_service_account,
)


def _tracking(configuration: Mapping, inputs: Mapping) -> tuple[str, ...]:
    if configuration.get("project_token"):
        return ()
    # No token: the event is imported, which the API secret or a project's service account may do.
    if _project_for_service_account(configuration, inputs):
        return ("project_token",)
    return ()


TRACKING = ConfigurationNeed(
    fields=("project_token", "project_id"),
    description=(
        "project_token (sent to /track); without it the event is imported with the API secret, "
        "or with a service account and project_id"
    ),
    missing=_tracking,
)


SERVICE_ACCOUNT = ConfigurationNeed(
    fields=("password",),
    description=(
        "service-account credentials, username and password; Mixpanel takes no API secret "
        "for this call"
    ),
    missing=lambda configuration, inputs: (
        () if uses_service_account(configuration) else ("password",)
    ),
)

ORGANIZATION = ConfigurationNeed(
    fields=("organization_id",),
    description="organization_id, unless the call gives one",
    missing=lambda configuration, inputs: (
        ()
        if inputs.get("organization_id") or configuration.get("organization_id")
        else ("organization_id",)
    ),
)


def _data_group(configuration: Mapping, inputs: Mapping) -> tuple[str, ...]:
    groups = configuration.get("data_groups")
    if isinstance(groups, Mapping) and inputs.get("groupKey") in groups:
        return ()
    return ("data_groups",)


def _data_groups_example(configuration: Mapping, inputs: Mapping) -> dict:
    # A PATCH replaces data_groups whole: the example keeps the entries the instance has.
    groups = configuration.get("data_groups")
    known = dict(groups) if isinstance(groups, Mapping) else {}
    return {"data_groups": {**known, inputs.get("groupKey") or "<group key>": "<data_group_id>"}}


DATA_GROUP = ConfigurationNeed(
    fields=("data_groups",),
    description="data_groups holding the group key's data_group_id, from Project Settings",
    missing=_data_group,
    example=_data_groups_example,
)

# Bulk ``groups`` reads every group key of data_groups: it needs one at least.
DATA_GROUPS = ConfigurationNeed(
    fields=("data_groups",),
    description="data_groups with the data_group_id of each group key to read (Project Settings)",
    example=lambda configuration, inputs: {"data_groups": {"<group key>": "<data_group_id>"}},
)

PROJECT_ID = ConfigurationNeed(
    fields=("project_id",),
    description="project_id, which Mixpanel's call names in its path or query",
)

SERVICE_ACCOUNT_CALL = (SERVICE_ACCOUNT, ORGANIZATION)
SERVICE_ACCOUNT_PROJECT = (SERVICE_ACCOUNT, PROJECT_ID)
QUERY = (PROJECT_FOR_SERVICE_ACCOUNT,)
PRIVACY = (GDPR_TOKEN, PROJECT_TOKEN)
