"""Schemathesis hooks for scripts/fuzz-contract.sh.

`POST /api/v1/encounters/import` takes NDJSON, which schemathesis cannot
serialize by itself: its document describes one line (an import item), so a
generated value is sent as one line, a generated list as one line per item.
"""

import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(item) + "\n" for item in items).encode()
