import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from tenants.services import organization_create


class Command(BaseCommand):
    help = "Create an organization with its first user and print both secrets (shown once)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--email", required=True)
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="print one JSON object"
        )

    def handle(self, *args, name, email, as_json: bool = False, **options):
        name = name.strip()
        if not name or len(name) > 200:
            raise CommandError("NAME must be 1 to 200 characters.")
        try:
            validate_email(email)
        except ValidationError as exc:
            raise CommandError(f"Invalid --email: {email!r}") from exc
        org, user = organization_create(name=name, email=email)
        result = {
            "organization_id": org.obj.pk,
            "organization_secret": org.secret,
            "user_id": user.obj.pk,
            "user_secret": user.secret,
        }
        if as_json:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(
            f"Organization {org.obj.pk} and user {user.obj.pk} created.\n"
            f"Organization secret: {org.secret}\n"
            f"User secret:         {user.secret}\n"
            "These secrets are shown once and cannot be recovered.\n"
            f"Authorization: User {user.secret}, Organization {org.secret}"
        )
