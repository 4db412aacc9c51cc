"""A monthly reporting job on the generated Python client.

    TT_BASE_URL=http://127.0.0.1:8080 TT_TOKEN=<reporter key> python examples/reporting_job.py [--out DIR]

Pulls the last twelve calendar months (this one included) of perception
trend, monthly and by touchpoint kind, each month's cNPS tested against the
month before (compare_to=previous_bucket), and the touchpoint-impact report
for the same window. Writes DIR/perception_trend.csv (one row per month and
kind, with the cNPS's 95% interval and the p-value of its change) and
DIR/perception_trend.png (cNPS per kind per month, its 95% interval as a
band, and the months whose change against the month before is significant
marked), and prints the five touchpoints that hurt perception most: the
lowest mean attributed shift, with its 95% interval, and whether it differs
from 0 beyond chance (Benjamini-Hochberg across the touchpoints).

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
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from touchpoint_tracker_client import AuthenticatedClient
from touchpoint_tracker_client.api.reports import get_perception_trend, get_touchpoint_impact
from touchpoint_tracker_client.models import (
    ErrorBody,
    PerceptionTrend,
    TouchpointImpactReport,
    TrendBucket,
    TrendComparison,
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
            client=client,
            bucket=TrendBucket.MONTH,
            group_by=TrendGroupBy.KIND,
            compare_to=TrendComparison.PREVIOUS_BUCKET,
            **window,
        ),
        PerceptionTrend,
    )
    impact = parsed(get_touchpoint_impact.sync_detailed(client=client, **window), TouchpointImpactReport)

    args.out.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = args.out / "perception_trend.csv", args.out / "perception_trend.png"
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(
            [
                *("month", "kind", "encounters", "scored", "promoters", "passives", "detractors", "mean_score"),
                *("cnps", "cnps_low", "cnps_high", "cnps_change_p_value"),
            ]
        )
        # Null (nothing scored, or a point suppressed because it has fewer
        # scores than the organization's min_group_size; for the p-value, the
        # first month or one next to a month without a cNPS) is an empty cell.
        for series in trend.series:
            for p in series.points:
                writer.writerow(
                    [
                        f"{p.bucket_start:%Y-%m}",
                        series.group,
                        p.encounters,
                        p.scored,
                        *(
                            "" if v is None else v
                            for v in (p.promoters, p.passives, p.detractors, p.mean_score)
                            + (p.cnps, p.cnps_low, p.cnps_high, p.cnps_change_p_value)
                        ),
                    ]
                )

    def number(value) -> float:
        return math.nan if value is None else value

    fig, ax = plt.subplots(figsize=(12, 5.5), dpi=110)
    marked = False
    for series in trend.series:
        months = [p.bucket_start for p in series.points]
        # A month without scores, or with too few (suppressed), has no cNPS
        # (null, not 0) and no interval: a gap in the line and the band.
        values = [number(p.cnps) for p in series.points]
        (line,) = ax.plot(months, values, marker="o", label=KIND_LABELS.get(series.group, series.group))
        # The 95% interval: where the cNPS of that month's candidates may
        # well be, given how few answered.
        ax.fill_between(
            months,
            [number(p.cnps_low) for p in series.points],
            [number(p.cnps_high) for p in series.points],
            color=line.get_color(),
            alpha=0.15,
            linewidth=0,
        )
        # Months whose cNPS differs from the month before beyond chance (p < 0.05).
        changed = [p for p in series.points if p.cnps_change_significant]
        if changed:
            ax.scatter(
                [p.bucket_start for p in changed],
                [p.cnps for p in changed],
                s=150,
                marker="o",
                facecolors="none",
                edgecolors="black",
                linewidths=1.6,
                zorder=3,
            )
            marked = True
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_ylim(-100, 100)
    ax.set_xlabel("Month")
    ax.set_ylabel("cNPS (% promoters − % detractors)")
    first, last = trend.from_, months_back(trend.to, 1)
    ax.set_title(f"Candidate NPS by touchpoint kind, {first:%b %Y} to {last:%b %Y}, monthly")
    # The kinds, then what the band and the circles mean, beside the chart.
    handles, _ = ax.get_legend_handles_labels()
    handles.append(Patch(facecolor="grey", alpha=0.25, label="95% interval (adjusted Wald)"))
    if marked:
        handles.append(
            Line2D(
                [],
                [],
                linestyle="none",
                marker="o",
                markersize=11,
                markerfacecolor="none",
                markeredgecolor="black",
                markeredgewidth=1.6,
                label="significant change vs\nprevious month (p < 0.05)",
            )
        )
    ax.legend(handles=handles, title="Touchpoint kind", loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9)
    ax.grid(True, alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)

    hurting = [t for t in impact.touchpoints if isinstance(t.mean_attributed_shift, float | int)]
    hurting.sort(key=lambda t: (t.mean_attributed_shift, -t.encounters))
    print(f"Perception report, {first:%b %Y} to {last:%b %Y}: wrote {csv_path} and {png_path}")
    print("The five touchpoints that hurt perception most (mean attributed shift per encounter, 95% interval;")
    print("* : differs from 0 beyond chance, Benjamini-Hochberg at a 5% false discovery rate):")
    print(f"  {'touchpoint':<34} {'kind':<17} {'shift':>7} {'95% interval':>18} {'encounters':>10} {'cNPS':>7}")
    for t in hurting[:5]:
        cnps = "-" if t.cnps is None else f"{t.cnps:.1f}"
        low, high = t.mean_attributed_shift_low, t.mean_attributed_shift_high
        interval = "-" if low is None or high is None else f"[{low:+.3f}, {high:+.3f}]"
        mark = "*" if t.significant else " "
        print(
            f"  {t.name:<34} {t.kind.value:<17} {t.mean_attributed_shift:>+7.3f}{mark} {interval:>17}"
            f" {t.encounters:>10} {cnps:>7}"
        )


if __name__ == "__main__":
    main()
