"""Summarizes what openapi-python-client left out of a generated client.

    python generator_report.py OPENAPI.json GENERATED_PACKAGE_DIR GENERATOR.log [--strict]

Prints the operations of the document that have no module in the generated
package, the schemas the generator dropped, and its warnings grouped by
reason. Exits 0, or with --strict 1 when a schema was dropped or an
operation is missing. (The NDJSON import is generated from its second media
type, application/octet-stream; the generator warns that it skips the first,
application/x-ndjson, and the warning is listed, not failed on.)
"""

import collections
import json
import re
import sys
from pathlib import Path

def main() -> None:
    spec_path, package, log_path = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    strict = sys.argv[4:] == ["--strict"]
    document = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    log = Path(log_path).read_text(encoding="utf-8")

    operations = {}
    for path, item in document["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and "operationId" in op:
                operations[op["operationId"]] = f"{method.upper()} {path}"
    generated = {p.stem for p in (package / "api").rglob("*.py") if p.stem != "__init__"}
    missing = sorted(set(operations) - generated)

    dropped = []
    for block in re.findall(r"has resulted in the removal of:\n((?:/components/\S+\n)+)", log):
        dropped += [line.rsplit("/", 1)[-1] for line in block.split()]
    reasons = collections.Counter()
    for match in re.finditer(r"^WARNING parsing (\S+ \S+)[^\n]*\n\n([^\n]+)", log, re.MULTILINE):
        reason = re.sub(r"<openapi_python_client[^>]*>", "<status>", match.group(2))
        reasons[reason] += 1
    for match in re.finditer(r"^Unable to process schema (\S+):\n\n([^\n]+)", log, re.MULTILINE):
        reasons[f"schema {match.group(1)}: {match.group(2)}"] += 1

    print(f"  operations missing from the client: {len(missing)} of {len(operations)}")
    for op in missing:
        print(f"    {op} ({operations[op]})")
    print(f"  schemas dropped: {len(dropped)}{': ' + ', '.join(dropped) if dropped else ''}")
    if reasons:
        print("  generator warnings, by reason:")
        for reason, n in reasons.most_common():
            print(f"    {n:4d}  {reason}")
    if strict and (dropped or missing):
        sys.exit(1)


if __name__ == "__main__":
    main()
