"""Writes a copy of the OpenAPI document that openapi-python-client can read.

openapi-python-client (0.29.1) refuses a property whose schema is
``{"allOf": [{"$ref": <an enum>}, {"description": ...}]}``, the shape
poem-openapi emits for an enum-typed field with a doc comment ("Cannot take
allOf a non-object"), and then drops that schema and every schema and
operation that uses it (CreateCandidate, CreateEncounter, ErrorBody, ...).

This rewrites exactly that shape to the bare ``$ref`` and nothing else, and
prints what it rewrote. It is a stop-gap for a defect of the document (see
/tmp/client-findings.md): once the service stops emitting the shape it
rewrites nothing, and scripts/clients.sh says so.

    python spec_compat.py IN.json OUT.json
"""

import json
import sys


def enum_ref_with_description(node, schemas):
    """The $ref of an allOf wrapping one enum $ref and one description."""
    all_of = node.get("allOf")
    if not isinstance(all_of, list) or len(all_of) != 2:
        return None
    ref, extra = all_of
    if set(ref) != {"$ref"} or set(extra) != {"description"}:
        return None
    if set(node) - {"allOf", "description"}:
        return None
    target = schemas.get(ref["$ref"].rsplit("/", 1)[-1], {})
    return ref["$ref"] if "enum" in target else None


def rewrite(node, schemas, where, rewritten):
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict):
                ref = enum_ref_with_description(value, schemas)
                if ref is not None:
                    node[key] = {"$ref": ref}
                    rewritten.append(f"{where}/{key}")
                    continue
            rewrite(value, schemas, f"{where}/{key}", rewritten)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            rewrite(value, schemas, f"{where}/{i}", rewritten)


def main():
    source, target = sys.argv[1], sys.argv[2]
    with open(source, encoding="utf-8") as f:
        document = json.load(f)
    rewritten = []
    rewrite(document, document.get("components", {}).get("schemas", {}), "#", rewritten)
    with open(target, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=2)
    for where in rewritten:
        print(f"spec_compat: allOf[$ref enum, description] -> $ref at {where}")
    if rewritten:
        print(f"spec_compat: {len(rewritten)} rewrites")
    else:
        print("spec_compat: nothing to rewrite: the document no longer needs this stop-gap")


if __name__ == "__main__":
    main()
