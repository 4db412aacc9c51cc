"""A monthly reporting job on the generated Python client.

    TT_BASE_URL=http://127.0.0.1:8080 TT_TOKEN=<reporter key> python examples/reporting_job.py [--out DIR]

Pulls the last twelve calendar months (this one included) of perception
trend, monthly and by touchpoint kind, and the touchpoint-impact report for
the same window. Writes DIR/perception_trend.csv (one row per month and
kind) and DIR/perception_trend.png (cNPS per kind per month), and prints the
five touchpoints that hurt perception most: the lowest mean attributed shift.

Needs the client generated from openapi/openapi.json
(package touchpoint_tracker_client) and matplotlib; scripts/clients.sh
installs both in target/clients-venv.
"""

import argparse
import csv
import math
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the backend
from touchpoint_tracker_client import AuthenticatedClient
from touchpoint_tracker_client.api.reports import get_perception_trend, get_touchpoint_impact
from touchpoint_tracker_client.models import (
    ErrorBody,
    PerceptionTrend,
    TouchpointImpactReport,
    TrendBucket,
    TrendGroupBy,
)

KIND_LABELS = {"employer_created": "Employer-created", "true": "True", "unexpected": "Unexpected"}


def months_back(day: date, months: int) -> date:
    """The first day of the month `months` before the month of `day` (negative: after)."""
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def parsed(response, model):
    if response.status_code != 200 or not isinstance(response.parsed, model):
        if isinstance(response.parsed, ErrorBody):
            error = response.parsed.error
            sys.exit(f"reporting_job: {response.status_code} {error.code.value}: {error.message} (field {error.field})")
        sys.exit(f"reporting_job: unexpected answer {response.status_code}: {response.content[:300]!r}")
    return response.parsed


def main() -> None:
    parser = argparse.ArgumentParser(description="Monthly perception report: CSV, chart and the worst touchpoints.")
    parser.add_argument("--out", type=Path, default=Path("."), help="directory for the CSV and the PNG")
    args = parser.parse_args()
    base_url, token = os.environ.get("TT_BASE_URL"), os.environ.get("TT_TOKEN")
    if not base_url or not token:
        sys.exit("reporting_job: set TT_BASE_URL and TT_TOKEN (a reporter key is enough)")
    client = AuthenticatedClient(base_url=base_url, token=token, timeout=60.0)

    today = datetime.now(UTC).date()
    window = {"from_": months_back(today, 11), "to": months_back(today, -1)}
    trend = parsed(
        get_perception_trend.sync_detailed(
            client=client, bucket=TrendBucket.MONTH, group_by=TrendGroupBy.KIND, **window
        ),
        PerceptionTrend,
    )
    impact = parsed(get_touchpoint_impact.sync_detailed(client=client, **window), TouchpointImpactReport)

    args.out.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = args.out / "perception_trend.csv", args.out / "perception_trend.png"
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["month", "kind", "encounters", "scored", "promoters", "passives", "detractors", "mean_score", "cnps"]
        )
        # Null (nothing scored, or a point suppressed because it has fewer
        # scores than the organization's min_group_size) is an empty cell.
        for series in trend.series:
            for p in series.points:
                writer.writerow(
                    [
                        f"{p.bucket_start:%Y-%m}",
                        series.group,
                        p.encounters,
                        p.scored,
                        *("" if v is None else v for v in (p.promoters, p.passives, p.detractors)),
                        "" if p.mean_score is None else p.mean_score,
                        "" if p.cnps is None else p.cnps,
                    ]
                )

    fig, ax = plt.subplots(figsize=(10, 5.5), dpi=110)
    for series in trend.series:
        months = [p.bucket_start for p in series.points]
        # A month without scores, or with too few (suppressed), has no cNPS
        # (null, not 0): a gap in the line.
        values = [math.nan if p.cnps is None else p.cnps for p in series.points]
        ax.plot(months, values, marker="o", label=KIND_LABELS.get(series.group, series.group))
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_ylim(-100, 100)
    ax.set_xlabel("Month")
    ax.set_ylabel("cNPS (% promoters − % detractors)")
    first, last = trend.from_, months_back(trend.to, 1)
    ax.set_title(f"Candidate NPS by touchpoint kind, {first:%b %Y} to {last:%b %Y}, monthly")
    ax.legend(title="Touchpoint kind")
    ax.grid(True, alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)

    hurting = [t for t in impact.touchpoints if isinstance(t.mean_attributed_shift, float | int)]
    hurting.sort(key=lambda t: (t.mean_attributed_shift, -t.encounters))
    print(f"Perception report, {first:%b %Y} to {last:%b %Y}: wrote {csv_path} and {png_path}")
    print("The five touchpoints that hurt perception most (mean attributed shift per encounter):")
    print(f"  {'touchpoint':<34} {'kind':<17} {'shift':>7} {'encounters':>10} {'cNPS':>7}")
    for t in hurting[:5]:
        cnps = "-" if t.cnps is None else f"{t.cnps:.1f}"
        print(f"  {t.name:<34} {t.kind.value:<17} {t.mean_attributed_shift:>+7.3f} {t.encounters:>10} {cnps:>7}")


if __name__ == "__main__":
    main()
