import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from tenants.models import Organization
from tenants.services import user_create


class Command(BaseCommand):
    help = "Create another user in an organization and print its secret (shown once)."

    def add_arguments(self, parser):
        parser.add_argument("org_id", type=int)
        parser.add_argument("--email", required=True)
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="print one JSON object"
        )

    def handle(self, *args, org_id: int, email: str, as_json: bool = False, **options):
        try:
            validate_email(email)
        except ValidationError as exc:
            raise CommandError(f"Invalid --email: {email!r}") from exc
        organization = Organization.objects.filter(pk=org_id).first()
        if organization is None:
            raise CommandError(f"No organization with id {org_id}.")
        user = user_create(organization=organization, email=email)
        result = {
            "organization_id": organization.pk,
            "user_id": user.obj.pk,
            "user_secret": user.secret,
        }
        if as_json:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(
            f"User {user.obj.pk} created in organization {organization.pk}.\n"
            f"User secret: {user.secret}\n"
            "This secret is shown once and cannot be recovered."
        )
