"""The demo tenant of ``bash scripts/run.sh --demo``, and curl commands that use it.

Needs MIXPANEL_BASE_URL pointing at a running simulator, and the instance's configuration (the
simulator's seeded service account, which ``run.sh --demo`` reads from
``simulators/mixpanel/testing.py``: the platform never imports the simulator): the credentials
are verified with it before anything is stored.
"""

import json
import shlex
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from django.core.management.base import BaseCommand, CommandError

from elements.framework.vendor import VendorError
from elements.services import DEMO_ORGANIZATION_NAME, demo_tenant_issue
from platform_core.exceptions import PlatformError


class Command(BaseCommand):
    help = (
        "Create (or re-key) the demo organization and its Mixpanel instance on the simulator's "
        "service account, and print curl commands with the new secrets filled in."
    )

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument(
            "--configuration",
            required=True,
            help="the demo instance's configuration, a JSON object",
        )
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="print one JSON object"
        )

    def handle(self, *args, base_url: str, configuration: str, as_json: bool = False, **options):
        try:
            configuration = json.loads(configuration)
        except ValueError:
            raise CommandError("--configuration is not JSON.") from None
        try:
            demo = demo_tenant_issue(element_key="mixpanel", configuration=configuration)
        except (VendorError, PlatformError) as exc:
            raise CommandError(
                f"The demo instance could not be set up: {exc} (is MIXPANEL_BASE_URL the "
                "simulator?)"
            ) from None
        if as_json:
            self.stdout.write(json.dumps(demo.__dict__))
            return
        self.stdout.write(demo_text(demo, base_url.rstrip("/")))


def demo_text(demo, base: str) -> str:
    element = f"User {demo.user_secret}, Element {demo.token}"
    platform = f"User {demo.user_secret}, Organization {demo.organization_secret}"
    api = f"{base}/elements/api-v2"
    today = datetime.now(UTC).date()
    week_ago = today - timedelta(days=6)
    dallas = quote("\"$city\"='Dallas'", safe="")
    bulk_query = quote("select * from activities", safe="")

    def curl(url: str, auth: str, *extra: str) -> str:
        return " ".join(
            ["curl", *extra, shlex.quote(url), "-H", shlex.quote(f"authorization: {auth}")]
        )

    commands = [
        ("Ping Mixpanel through the instance", curl(f"{api}/hubs/general/ping", element)),
        (
            "Profiles in Dallas",
            curl(f"{api}/hubs/general/users?where={dallas}&pageSize=5", element),
        ),
        ("Today's top events", curl(f"{api}/hubs/general/activities/top?limit=5", element)),
        (
            "Track an event",
            curl(
                f"{api}/hubs/general/activities",
                element,
                "-X",
                "POST",
                "-H",
                shlex.quote("content-type: application/json"),
                "-d",
                shlex.quote('{"event": "Demo click", "properties": {"distinct_id": "user-1"}}'),
            ),
        ),
        (
            "Download the last 7 days of events in the background (a bulk job)",
            curl(
                f"{api}/bulk/query?q={bulk_query}&from={week_ago}&to={today}",
                element,
                "-X",
                "POST",
            ),
        ),
        ("The bulk jobs and their status", curl(f"{api}/bulk/jobs", element)),
        ("Your instances", curl(f"{api}/instances", platform)),
        ("The usage log", curl(f"{api}/usage", platform)),
    ]
    lines = [
        f'Demo organization "{DEMO_ORGANIZATION_NAME}" (id {demo.organization_id}) and its '
        f"instance {demo.instance_id} on the simulator are ready.",
        "Their secrets are new on every run (the previous ones no longer work).",
        "Paste these into another terminal:",
        "",
    ]
    for title, command in commands:
        lines += [f"# {title}", command]
    lines += [
        "",
        "# To follow the README's walk-through with this tenant:",
        f"export USER_SECRET={demo.user_secret} ORG_SECRET={demo.organization_secret} "
        f"TOKEN={demo.token} INSTANCE={demo.instance_id}",
    ]
    return "\n".join(lines)
