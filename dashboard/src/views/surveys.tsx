// Survey response rates (/app/surveys): of the invitations created in the
// window, per touchpoint, stage or kind, how many were sent, opened and
// answered. Small groups show only how many were invited.
import { useState } from "preact/hooks";
import { api, unwrap, type Kind, type Schemas, type Stage } from "../api";
import { loadCatalog } from "../catalog";
import { useApp } from "../state";
import { num, Page, Section, Select, Show, Suppressed, Table, useLoad, WindowPicker } from "../ui";
import { useReportWindow } from "../window";

type GroupBy = Schemas["ResponsesGroupBy"];

export function Surveys() {
  const { t, fmt } = useApp();
  const window = useReportWindow();
  const [groupBy, setGroupBy] = useState<GroupBy>("touchpoint");
  const loaded = useLoad(
    () =>
      Promise.all([
        unwrap(api.GET("/api/v1/reports/survey-responses", { params: { query: { from: window.from, to: window.to, group_by: groupBy } } })),
        loadCatalog(),
      ]),
    [window.from, window.to, groupBy],
  );
  return (
    <Page title={t("nav.surveys")} intro={t("surveys.intro")}>
      <WindowPicker window={window} />
      <Section
        title={t("surveys.rates")}
        id="responses"
        busy={loaded.loading}
        actions={
          <div class="inline-controls">
            <Select
              id="responses-group"
              label={t("surveys.group_by")}
              value={groupBy}
              options={["touchpoint", "stage", "kind"] as const}
              labelOf={(g) => t(`surveys.by_${g}`)}
              onChange={setGroupBy}
            />
          </div>
        }
      >
        <Show loaded={loaded}>
          {([report, catalog]) => {
            const label = (group: string) =>
              report.group_by === "touchpoint"
                ? catalog.find((tp) => String(tp.id) === group)?.name ?? `#${group}`
                : report.group_by === "stage"
                  ? t(`stage.${group as Stage}`)
                  : t(`kind.${group as Kind}`);
            const totals = report.groups.reduce((n, g) => n + g.invited, 0);
            if (report.groups.length === 0 || totals === 0) return <p class="muted">{t("surveys.none")}</p>;
            return (
              <Table
                caption={t("surveys.caption", { n: fmt.count(totals) })}
                columns={[
                  t(`surveys.by_${report.group_by}`),
                  num(t("surveys.invited")),
                  num(t("surveys.sent")),
                  num(t("surveys.opened")),
                  num(t("surveys.answered")),
                  num(t("surveys.rate")),
                  num(t("surveys.median")),
                ]}
              >
                {report.groups.map((g) => (
                  <tr>
                    <th scope="row">{label(g.group)}</th>
                    <td class="num">{fmt.count(g.invited)}</td>
                    {g.suppressed ? (
                      <td colSpan={5}>
                        <Suppressed unit="invitations" />
                      </td>
                    ) : (
                      <>
                        <td class="num">{fmt.count(g.sent ?? 0)}</td>
                        <td class="num">{fmt.count(g.opened ?? 0)}</td>
                        <td class="num">{fmt.count(g.answered ?? 0)}</td>
                        <td class="num">{g.response_rate === null ? "–" : fmt.percent(g.response_rate)}</td>
                        <td class="num">
                          {g.median_hours_to_answer === null ? "–" : t("surveys.hours", { n: fmt.number(g.median_hours_to_answer, 1) })}
                        </td>
                      </>
                    )}
                  </tr>
                ))}
              </Table>
            );
          }}
        </Show>
      </Section>
    </Page>
  );
}
