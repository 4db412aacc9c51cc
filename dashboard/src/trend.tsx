// The cNPS trend of a window, as a chart with interval bands, a caption
// that says what it shows, and the same figures as a table. Used by the
// overview (by kind) and a touchpoint's page (that touchpoint alone).
import { useMemo, useState } from "preact/hooks";
import { api, unwrap, type Kind, type Schemas } from "./api";
import { Legend, PALETTE, TrendChart, type ChartSeries } from "./chart";
import { addDays } from "./format";
import { Field, Interval, Section, Show, Suppressed, Table, useLoad } from "./ui";
import { useApp } from "./state";
import { defaultBucket, type Bucket, type ReportWindow } from "./window";

type TrendPoint = Schemas["TrendPoint"];
const BUCKETS: Bucket[] = ["day", "week", "month"];
const KIND_ORDER: Kind[] = ["employer_created", "true", "unexpected"];

export function TrendSection(props: {
  window: ReportWindow;
  title: string;
  groupBy: "none" | "kind";
  touchpointId?: number;
}) {
  const { t, locale } = useApp();
  const [chosen, setBucket] = useState<Bucket | null>(null);
  const bucket = chosen ?? defaultBucket(props.window);
  const loaded = useLoad(
    () =>
      unwrap(
        api.GET("/api/v1/reports/perception-trend", {
          params: {
            query: {
              from: props.window.from,
              to: props.window.to,
              bucket,
              group_by: props.groupBy,
              compare_to: "previous_bucket",
              ...(props.touchpointId !== undefined ? { touchpoint_id: props.touchpointId } : {}),
            },
          },
        }),
      ),
    [props.window.from, props.window.to, bucket, props.groupBy, props.touchpointId],
  );
  const id = props.touchpointId === undefined ? "trend" : `trend-${props.touchpointId}`;
  return (
    <Section
      title={props.title}
      id={id}
      busy={loaded.loading}
      actions={
        <div class="inline-controls">
          <Field id={`${id}-bucket`} label={t("trend.bucket")}>
            {(control) => (
              <select {...control} value={bucket} onChange={(e) => setBucket(e.currentTarget.value as Bucket)}>
                {BUCKETS.map((b) => (
                  <option value={b}>{t(`bucket.${b}`)}</option>
                ))}
              </select>
            )}
          </Field>
        </div>
      }
    >
      <Show loaded={loaded}>{(trend) => <TrendBody trend={trend} key={`${locale}-${trend.from}-${trend.to}-${trend.bucket}`} />}</Show>
    </Section>
  );
}

function TrendBody(props: { trend: Schemas["PerceptionTrend"] }) {
  const { t, fmt } = useApp();
  const { trend } = props;
  const ordered = useMemo(
    () =>
      [...trend.series].sort(
        (a, b) => KIND_ORDER.indexOf(a.group as Kind) - KIND_ORDER.indexOf(b.group as Kind),
      ),
    [trend],
  );
  const label = (group: string) =>
    trend.group_by === "kind" ? t(`kind.${group as Kind}`) : trend.group_by === "none" ? t("trend.all") : group;
  const buckets = ordered[0]?.points.map((p) => p.bucket_start) ?? [];
  const bucketLabel = (day: string) => (trend.bucket === "month" ? fmt.month(day) : fmt.day(day));
  const chart = useMemo(() => {
    const x = buckets.map((day) => Date.parse(`${day}T00:00:00Z`) / 1000);
    const series: ChartSeries[] = ordered.map((s, i) => ({
      label: label(s.group),
      color: PALETTE[i % PALETTE.length]!,
      values: s.points.map((p) => p.cnps),
      low: s.points.map((p) => p.cnps_low),
      high: s.points.map((p) => p.cnps_high),
    }));
    return { x, series };
  }, [trend, t]);
  if (buckets.length === 0) return <p class="muted">{t("trend.empty")}</p>;

  // The caption: what is drawn, and each series' latest figure.
  const latest = ordered.map((s) => {
    const point = [...s.points].reverse().find((p) => p.cnps !== null);
    const name = label(s.group);
    if (!point) {
      return s.points.some((p) => p.suppressed)
        ? t("trend.caption_suppressed", { series: name })
        : t("trend.caption_none", { series: name });
    }
    return t("trend.caption_latest", {
      series: name,
      bucket: bucketLabel(point.bucket_start),
      cnps: fmt.signed(point.cnps!, 1),
      low: fmt.signed(point.cnps_low ?? point.cnps!, 1),
      high: fmt.signed(point.cnps_high ?? point.cnps!, 1),
      n: fmt.count(point.scored),
    });
  });
  const significant = ordered.reduce((n, s) => n + s.points.filter((p) => p.cnps_change_significant).length, 0);
  const caption = [
    t("trend.caption", {
      bucket: t(`bucket.${trend.bucket}`),
      from: fmt.day(trend.from),
      through: fmt.day(addDays(trend.to, -1)),
    }),
    ...latest,
    t("trend.caption_changes", { n: significant, bucket: t(`bucket.${trend.bucket}`) }),
  ].join(" ");

  return (
    <figure class="trend">
      <Legend series={chart.series} />
      <TrendChart x={chart.x} series={chart.series} fmt={fmt} monthly={trend.bucket === "month"} range={[-100, 100]} />
      <figcaption>{caption}</figcaption>
      <details class="figures">
        <summary>{t("trend.table")}</summary>
        <Table caption={caption} columns={[capitalize(t(`bucket.${trend.bucket}`)), ...ordered.map((s) => label(s.group))]}>
          {buckets.map((day, row) => (
            <tr>
              <th scope="row">{bucketLabel(day)}</th>
              {ordered.map((s) => (
                <td>
                  <PointCell point={s.points[row]!} />
                </td>
              ))}
            </tr>
          ))}
        </Table>
      </details>
    </figure>
  );
}

function PointCell(props: { point: TrendPoint }) {
  const { t, fmt } = useApp();
  const p = props.point;
  if (p.suppressed) {
    return (
      <>
        <Suppressed />
        <span class="cell-detail">{t("trend.encounters", { n: fmt.count(p.encounters) })}</span>
      </>
    );
  }
  return (
    <>
      <Interval value={p.cnps} low={p.cnps_low} high={p.cnps_high} />
      <span class="cell-detail">{t("trend.scored", { n: fmt.count(p.scored), e: fmt.count(p.encounters) })}</span>
      {p.cnps_change_significant && (
        <span class="badge significant">
          {t("trend.significant_change")} (p {fmt.p(p.cnps_change_p_value ?? 0)})
        </span>
      )}
    </>
  );
}

function capitalize(word: string): string {
  return word.charAt(0).toLocaleUpperCase() + word.slice(1);
}
