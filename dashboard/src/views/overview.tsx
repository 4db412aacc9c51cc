// Overview (/app): the window's totals and cNPS against the previous
// window, the cNPS trend by kind, and the touchpoints that move perception
// most, up and down.
import { api, unwrap } from "../api";
import { addDays } from "../format";
import { ImpactRowHead, MeanShift, ShiftSignificance, useImpact, type Impact } from "../impact";
import { useApp } from "../state";
import { TrendSection } from "../trend";
import { Interval, Page, Section, Shift, Show, Significance, Suppressed, Table, useLoad, WindowPicker } from "../ui";
import { useReportWindow } from "../window";

const MOVERS = 5;

export function Overview() {
  const { t } = useApp();
  const window = useReportWindow();
  return (
    <Page title={t("nav.overview")}>
      <WindowPicker window={window} />
      <SummaryFigures from={window.from} to={window.to} />
      <TrendSection window={window} title={t("overview.trend")} groupBy="kind" />
      <Movers from={window.from} to={window.to} />
    </Page>
  );
}

function SummaryFigures(props: { from: string; to: string }) {
  const { t, fmt } = useApp();
  const loaded = useLoad(
    () => unwrap(api.GET("/api/v1/reports/summary", { params: { query: { from: props.from, to: props.to } } })),
    [props.from, props.to],
  );
  return (
    <Section title={t("overview.figures")} id="figures" busy={loaded.loading}>
      <Show loaded={loaded}>
        {(s) => (
          <>
            <dl class="figures-grid">
              <div class="figure" data-figure="candidates">
                <dt>{t("overview.candidates")}</dt>
                <dd class="big">{fmt.count(s.candidates)}</dd>
              </div>
              <div class="figure" data-figure="encounters">
                <dt>{t("overview.encounters")}</dt>
                <dd class="big">{fmt.count(s.encounters)}</dd>
                <dd class="detail">{t("overview.scored", { n: fmt.count(s.scored) })}</dd>
              </div>
              <div class="figure" data-figure="cnps">
                <dt>{t("overview.cnps")}</dt>
                <dd class="big">
                  <Interval value={s.cnps} low={s.cnps_low} high={s.cnps_high} suppressed={s.suppressed} />
                </dd>
                <dd class="detail">
                  {t("overview.mean_score")}{" "}
                  <Interval
                    value={s.mean_score}
                    low={s.mean_score_low}
                    high={s.mean_score_high}
                    suppressed={s.suppressed}
                    digits={2}
                    signed={false}
                  />
                </dd>
              </div>
              <div class="figure" data-figure="change">
                <dt>{t("overview.change")}</dt>
                <dd class="big">
                  {s.cnps_change === null ? (
                    s.suppressed || s.previous_suppressed ? (
                      <Suppressed />
                    ) : (
                      <span class="muted">{t("overview.no_change")}</span>
                    )
                  ) : (
                    <Shift value={s.cnps_change} digits={1} />
                  )}
                </dd>
                <dd class="detail">
                  {t("overview.previous", {
                    from: fmt.day(s.previous_from),
                    through: fmt.day(addDays(s.from, -1)),
                  })}{" "}
                  <Interval
                    value={s.previous_cnps}
                    low={s.previous_cnps_low}
                    high={s.previous_cnps_high}
                    suppressed={s.previous_suppressed}
                  />
                </dd>
                {s.cnps_change !== null && (
                  <dd class="detail">
                    <Significance significant={s.cnps_change_significant} p={s.cnps_change_p_value} />
                    {s.cnps_change_significant === false && <> {t("overview.maybe_chance")}</>}
                  </dd>
                )}
              </div>
            </dl>
            <p class="muted small">{t("overview.interval_note")}</p>
          </>
        )}
      </Show>
    </Section>
  );
}

/** The touchpoints with the largest mean attributed shift each way. */
function Movers(props: { from: string; to: string }) {
  const { t } = useApp();
  const loaded = useImpact(props.from, props.to);
  return (
    <Section title={t("overview.movers")} id="movers" busy={loaded.loading}>
      <Show loaded={loaded}>
        {(report) => {
          const shown = report.touchpoints.filter((row) => row.mean_attributed_shift !== null);
          const up = shown
            .filter((row) => row.mean_attributed_shift! > 0)
            .sort((a, b) => b.mean_attributed_shift! - a.mean_attributed_shift!)
            .slice(0, MOVERS);
          const down = shown
            .filter((row) => row.mean_attributed_shift! < 0)
            .sort((a, b) => a.mean_attributed_shift! - b.mean_attributed_shift!)
            .slice(0, MOVERS);
          const withheld = report.touchpoints.length - shown.length;
          return (
            <>
              <p class="muted small">{t("overview.movers_note")}</p>
              <div class="two-columns">
                <MoversTable title={t("overview.up")} rows={up} />
                <MoversTable title={t("overview.down")} rows={down} />
              </div>
              {withheld > 0 && <p class="muted small">{t("overview.movers_withheld", { n: withheld })}</p>}
              <p>
                <a href={`/app/touchpoints${window.location.search}#impact`}>{t("overview.all_touchpoints")}</a>
              </p>
            </>
          );
        }}
      </Show>
    </Section>
  );
}

function MoversTable(props: { title: string; rows: Impact[] }) {
  const { t, fmt } = useApp();
  return (
    <div>
      <h3>{props.title}</h3>
      {props.rows.length === 0 ? (
        <p class="muted">{t("overview.no_movers")}</p>
      ) : (
        <Table class="compact" scroll={false} columns={[t("impact.touchpoint"), t("impact.mean_shift"), t("impact.significance")]}>
          {props.rows.map((row) => (
            <tr>
              <ImpactRowHead row={row}>
                {t(`kind.${row.kind}`)} · {t("impact.attributions", { n: fmt.count(row.attributions) })}
              </ImpactRowHead>
              <td>
                <MeanShift row={row} />
              </td>
              <td>
                <ShiftSignificance row={row} />
              </td>
            </tr>
          ))}
        </Table>
      )}
    </div>
  );
}
