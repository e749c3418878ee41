"""Lookup tables (reference part 2 §5): list them, and replace one whole from a CSV body.

Mixpanel creates tables in its UI; the API lists them (service account only) and replaces one
all-or-nothing (a service account or the API secret). The CSV is checked here first, by
Mixpanel's rules (a unique header of at least two columns, every row as wide, the first column
a unique non-blank key), so that a bad file is a 400 naming its rows before any vendor call.
"""

import csv
import io

from elements.framework.definition import Call, Operation, Result, TextBody
from elements.framework.vendor import VendorGarbage
from elements.mixpanel.collections import PAGE_INPUTS, page_of, page_start
from elements.mixpanel.needs import QUERY, SERVICE_ACCOUNT_PROJECT
from elements.mixpanel.vendor import project_query
from platform_core.exceptions import ValidationFailed

VENDOR_PATH = "/lookup-tables"
MAX_REPORTED_ROWS = 10  # as Mixpanel: the first ten bad rows

LOOKUP_TABLE = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
    "required": ["id", "name"],
}


def list_lookup_tables(call: Call) -> tuple[list[dict], int]:
    """The project's lookup tables (``{"id", "name"}``), and the vendor's status."""
    response = call.vendor.request(
        "GET", "api", VENDOR_PATH, query=project_query(call.configuration), idempotent=True
    )
    body = response.json()
    tables = body.get("results") if isinstance(body, dict) else None
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise VendorGarbage(
            "Mixpanel's lookup-table answer had no results.", provider_status=response.status
        )
    return tables, response.status


def get_lookup_tables(call: Call) -> Result:
    start = page_start(call.inputs)
    tables, status = list_lookup_tables(call)
    page, headers = page_of(tables, call.inputs, start)
    return Result(page, headers=headers, vendor_status=status)


def csv_rows(text: str) -> list[list[str]]:
    """The table's rows, header first; 400 naming ``csv`` (and the bad rows) otherwise."""
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline=""), strict=True) if row]
    except csv.Error as exc:
        raise _bad_csv([f"not valid CSV: {exc}"]) from None
    if not rows:
        raise _bad_csv(["the CSV has no header row"])
    header = rows[0]
    problems = []
    if len(header) < 2:
        problems.append("row 0: the header needs at least 2 columns (the key and a value)")
    elif len(set(header)) != len(header) or not all(name.strip() for name in header):
        problems.append("row 0: column names must be unique and non-blank")
    keys: dict[str, int] = {}
    for index, row in enumerate(rows[1:], start=1):
        if len(problems) >= MAX_REPORTED_ROWS:
            break
        if len(row) != len(header):
            problems.append(f"row {index}: {len(row)} fields where the header has {len(header)}")
        elif not row[0].strip():
            problems.append(f"row {index}: the key (first column) is blank")
        elif row[0] in keys:
            problems.append(f"row {index}: the key {row[0][:100]!r} repeats row {keys[row[0]]}")
        else:
            keys[row[0]] = index
    if problems:
        raise _bad_csv(problems)
    return rows


def _bad_csv(problems: list[str]) -> ValidationFailed:
    return ValidationFailed(
        "The CSV is not a valid lookup table.",
        errors=[{"field": "csv", "message": problem} for problem in problems],
    )


def replace_lookup_table(call: Call) -> Result:
    rows = csv_rows(call.inputs["csv"])
    response = call.vendor.request(
        "PUT",
        "api",
        f"{VENDOR_PATH}/{call.inputs['id']}",
        query=project_query(call.configuration),
        body=call.inputs["csv"].encode(),
        content_type="text/csv",
    )
    return Result(
        {"id": call.inputs["id"], "replaced": True, "rows": len(rows) - 1},
        vendor_status=response.status,
    )


OPERATIONS = (
    Operation(
        id="getLookupTables",
        name="list_lookup_tables",
        method="GET",
        path="/lookup-tables",
        object_name="lookup-tables",
        handler=get_lookup_tables,
        requires_configuration=SERVICE_ACCOUNT_PROJECT,
        description="List the project's lookup tables, paged with pageSize and nextPage.",
        vendor_method="GET",
        vendor_path=VENDOR_PATH,
        input_schema={
            "type": "object",
            "properties": dict(PAGE_INPUTS),
            "additionalProperties": False,
        },
        output_schema={"type": "array", "items": LOOKUP_TABLE},
        idempotent=True,
    ),
    Operation(
        id="replaceLookupTable",
        name="replace_lookup_table",
        method="PUT",
        path="/lookup-tables/{id}",
        object_name="lookup-tables",
        handler=replace_lookup_table,
        # A service account or the project's API secret, which names its project itself.
        requires_configuration=QUERY,
        description=(
            "Replace a lookup table's rows with a CSV body (Content-Type: text/csv; header "
            "row first, the first column the unique key). All or nothing."
        ),
        vendor_method="PUT",
        vendor_path=VENDOR_PATH + "/{lookupTableId}",
        input_schema={
            "type": "object",
            "properties": {
                "id": {
                    "type": "string",
                    "pattern": r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-"
                    r"[0-9A-Fa-f]{12}$",
                    "maxLength": 36,
                    "x-in": "path",
                    "description": "The lookup table's id (a UUID, from GET /lookup-tables).",
                },
                "csv": {
                    "type": "string",
                    "minLength": 1,
                    "x-in": "body",
                    "contentMediaType": "text/csv",
                    "description": "The whole table as CSV (RFC 4180), header row first.",
                },
            },
            "required": ["id", "csv"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "replaced": {"type": "boolean"},
                "rows": {"type": "integer"},
            },
            "required": ["id", "replaced", "rows"],
        },
        text_body=TextBody(property="csv"),
        idempotent=True,  # a replacement: repeating it gives the same table
    ),
)
