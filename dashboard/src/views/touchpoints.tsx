// Touchpoints (/app/touchpoints): the catalog (admins create, edit and
// archive) and the impact ranking of the window; one touchpoint's page
// (/app/touchpoints/{id}) with its figures and trend.
import { useState } from "preact/hooks";
import { api, unwrap, type Channel, type Kind, type Stage, type Touchpoint } from "../api";
import { forgetCatalog, loadCatalog } from "../catalog";
import { ImpactRowHead, MeanShift, ShiftSignificance, useImpact, type Impact } from "../impact";
import { CHANNELS, KINDS, STAGES } from "../vocabulary";
import { navigate, useLocation } from "../router";
import { useApp } from "../state";
import { TrendSection } from "../trend";
import {
  errorsFor,
  ErrorNote,
  Field,
  FormActions,
  FormError,
  Interval,
  Loading,
  num,
  Page,
  required,
  Section,
  Select,
  Show,
  Suppressed,
  Table,
  ToggleButton,
  useForm,
  useLoad,
  WindowPicker,
} from "../ui";
import { useReportWindow, type ReportWindow } from "../window";

type ImpactOrder = "shift" | "encounters" | "cnps";

export function Touchpoints() {
  const { t, can } = useApp();
  const window = useReportWindow();
  const [creating, setCreating] = useState(false);
  const [showArchived, setShowArchived] = useState(false);
  const catalog = useLoad(() => loadCatalog(), []);
  return (
    <Page
      title={t("nav.touchpoints")}
      actions={
        can.admin && (
          <ToggleButton open={creating} onToggle={setCreating}>
            {t("touchpoints.new")}
          </ToggleButton>
        )
      }
    >
      {can.admin && creating && (
        <Section title={t("touchpoints.new")} id="new-touchpoint">
          <TouchpointForm
            onDone={(saved) => {
              setCreating(false);
              forgetCatalog();
              catalog.reload();
              if (saved) navigate(`/app/touchpoints/${saved.id}`);
            }}
          />
        </Section>
      )}
      <Section
        title={t("touchpoints.catalog")}
        id="catalog"
        busy={catalog.loading}
        actions={
          <label class="checkbox">
            <input type="checkbox" checked={showArchived} onChange={(e) => setShowArchived(e.currentTarget.checked)} />
            {t("touchpoints.show_archived")}
          </label>
        }
      >
        <Show loaded={catalog}>
          {(rows) => <CatalogTable rows={rows.filter((row) => showArchived || !row.archived_at)} />}
        </Show>
      </Section>
      <Section title={t("touchpoints.impact")} id="impact">
        <WindowPicker window={window} />
        <ImpactRanking window={window} />
      </Section>
    </Page>
  );
}

function CatalogTable(props: { rows: Touchpoint[] }) {
  const { t, fmt, can } = useApp();
  if (props.rows.length === 0) return <p class="muted">{t("touchpoints.none")}</p>;
  return (
    <Table
      columns={[t("touchpoint.name"), t("touchpoint.kind"), t("touchpoint.channel"), t("touchpoint.stage"), t("touchpoint.status"), can.admin && t("common.actions")]}
    >
      {props.rows.map((row) => (
        <tr class={row.archived_at ? "archived" : undefined}>
          <th scope="row">
            <a href={`/app/touchpoints/${row.id}`}>{row.name}</a>
            {row.description && <span class="cell-detail">{row.description}</span>}
          </th>
          <td>{t(`kind.${row.kind}`)}</td>
          <td>{t(`channel.${row.channel}`)}</td>
          <td>{t(`stage.${row.stage}`)}</td>
          <td>{row.archived_at ? t("touchpoint.archived_on", { date: fmt.dateTime(row.archived_at) }) : t("touchpoint.active")}</td>
          {can.admin && (
            <td>
              <a href={`/app/touchpoints/${row.id}?edit=1`} aria-label={t("touchpoints.edit_named", { name: row.name })}>
                {t("common.edit")}
              </a>
            </td>
          )}
        </tr>
      ))}
    </Table>
  );
}

function ImpactRanking(props: { window: ReportWindow }) {
  const { t } = useApp();
  const [order, setOrder] = useState<ImpactOrder>("shift");
  const loaded = useImpact(props.window.from, props.window.to);
  return (
    <div aria-busy={loaded.loading ? "true" : "false"}>
      <p class="muted small">{t("impact.note")}</p>
      <div class="inline-controls">
        <Select
          id="impact-order"
          label={t("impact.order")}
          value={order}
          options={["shift", "encounters", "cnps"] as const}
          labelOf={(o) => t(`impact.order_${o}`)}
          onChange={setOrder}
        />
      </div>
      <Show loaded={loaded}>{(report) => <ImpactTable rows={sortImpact(report.touchpoints, order)} />}</Show>
    </div>
  );
}

// The API's order (most harmful shift first) for "shift"; withheld figures last.
function sortImpact(rows: Impact[], order: ImpactOrder): Impact[] {
  if (order === "shift") return rows;
  const key = (row: Impact) => (order === "encounters" ? row.encounters : row.cnps ?? Number.NEGATIVE_INFINITY);
  return [...rows].sort((a, b) => key(b) - key(a));
}

function ImpactTable(props: { rows: Impact[] }) {
  const { t, fmt } = useApp();
  if (props.rows.length === 0) return <p class="muted">{t("impact.none")}</p>;
  return (
    <Table
      columns={[
        t("impact.touchpoint"),
        num(t("impact.encounters")),
        num(t("impact.candidates")),
        t("impact.cnps"),
        t("impact.mean_shift"),
        t("impact.significance"),
      ]}
    >
      {props.rows.map((row) => (
        <tr>
          <ImpactRowHead row={row}>
            {t(`kind.${row.kind}`)} · {t(`stage.${row.stage}`)}
          </ImpactRowHead>
          <td class="num">{fmt.count(row.encounters)}</td>
          <td class="num">{fmt.count(row.candidates)}</td>
          <td>
            <Interval value={row.cnps} low={row.cnps_low} high={row.cnps_high} suppressed={row.suppressed} />
            <span class="cell-detail">{t("impact.scored", { n: fmt.count(row.scored) })}</span>
          </td>
          <td>
            <ShiftFigure row={row} />
          </td>
          <td>
            <ShiftSignificance row={row} />
          </td>
        </tr>
      ))}
    </Table>
  );
}

/** The mean attributed shift, or why it is not shown. */
function ShiftFigure(props: { row: Impact }) {
  const { t, fmt, session } = useApp();
  const { row } = props;
  if (row.suppressed) return <Suppressed />;
  if (row.mean_attributed_shift === null) {
    if (row.attributions > 0 && row.attributions < session.organization.min_group_size) return <Suppressed unit="attributions" />;
    return <span class="muted">{t("impact.no_shift")}</span>;
  }
  return (
    <>
      <MeanShift row={row} />
      <span class="cell-detail">{t("impact.attributions", { n: fmt.count(row.attributions) })}</span>
    </>
  );
}

// --- one touchpoint --------------------------------------------------------
export function TouchpointPage(props: { id: number }) {
  const { t, fmt, can } = useApp();
  const { query } = useLocation();
  const window = useReportWindow();
  const [editing, setEditing] = useState(query.get("edit") === "1");
  const [archiveError, setArchiveError] = useState<unknown>();
  const loaded = useLoad(() => unwrap(api.GET("/api/v1/touchpoints/{id}", { params: { path: { id: props.id } } })), [props.id]);
  const archive = async (touchpoint: Touchpoint) => {
    if (!confirm(t("touchpoint.archive_confirm", { name: touchpoint.name }))) return;
    try {
      await unwrap(api.DELETE("/api/v1/touchpoints/{id}", { params: { path: { id: touchpoint.id } } }));
      forgetCatalog();
      loaded.reload();
    } catch (error) {
      setArchiveError(error);
    }
  };
  if (loaded.error) {
    return (
      <Page title={t("nav.touchpoints")}>
        <ErrorNote error={loaded.error} retry={loaded.reload} />
      </Page>
    );
  }
  const touchpoint = loaded.data;
  if (!touchpoint) {
    return (
      <Page title={t("nav.touchpoints")}>
        <Loading />
      </Page>
    );
  }
  return (
    <Page
      title={touchpoint.name}
      actions={
        can.admin &&
        !touchpoint.archived_at && (
          <>
            <ToggleButton class="secondary" open={editing} onToggle={setEditing}>
              {t("common.edit")}
            </ToggleButton>
            <button type="button" class="danger" onClick={() => archive(touchpoint)}>
              {t("touchpoint.archive")}
            </button>
          </>
        )
      }
    >
      <p class="breadcrumb">
        <a href="/app/touchpoints">{t("nav.touchpoints")}</a>
      </p>
      {archiveError !== undefined && <FormError message={errorsFor(t, archiveError, {}).form} />}
      {editing && can.admin ? (
        <Section title={t("touchpoint.edit")} id="edit-touchpoint">
          <TouchpointForm
            touchpoint={touchpoint}
            onDone={(saved) => {
              setEditing(false);
              if (saved) {
                forgetCatalog();
                loaded.reload();
              }
            }}
          />
        </Section>
      ) : (
        <dl class="facts">
          <div>
            <dt>{t("touchpoint.kind")}</dt>
            <dd>{t(`kind.${touchpoint.kind}`)}</dd>
          </div>
          <div>
            <dt>{t("touchpoint.channel")}</dt>
            <dd>{t(`channel.${touchpoint.channel}`)}</dd>
          </div>
          <div>
            <dt>{t("touchpoint.stage")}</dt>
            <dd>{t(`stage.${touchpoint.stage}`)}</dd>
          </div>
          <div>
            <dt>{t("touchpoint.status")}</dt>
            <dd>
              {touchpoint.archived_at ? t("touchpoint.archived_on", { date: fmt.dateTime(touchpoint.archived_at) }) : t("touchpoint.active")}
            </dd>
          </div>
          {touchpoint.description && (
            <div class="wide">
              <dt>{t("touchpoint.description")}</dt>
              <dd>{touchpoint.description}</dd>
            </div>
          )}
        </dl>
      )}
      <WindowPicker window={window} />
      <TouchpointFigures id={touchpoint.id} window={window} />
      <TrendSection window={window} title={t("touchpoint.trend")} groupBy="none" touchpointId={touchpoint.id} />
    </Page>
  );
}

function TouchpointFigures(props: { id: number; window: ReportWindow }) {
  const { t, fmt } = useApp();
  const loaded = useImpact(props.window.from, props.window.to);
  return (
    <Section title={t("touchpoint.figures")} id="touchpoint-figures" busy={loaded.loading}>
      <Show loaded={loaded}>
        {(report) => {
          const row = report.touchpoints.find((r) => r.touchpoint_id === props.id);
          if (!row) return <p class="muted">{t("touchpoint.not_met")}</p>;
          return (
            <dl class="figures-grid">
              <div class="figure">
                <dt>{t("impact.encounters")}</dt>
                <dd class="big">{fmt.count(row.encounters)}</dd>
                <dd class="detail">{t("impact.candidates_n", { n: fmt.count(row.candidates) })}</dd>
              </div>
              <div class="figure">
                <dt>{t("impact.cnps")}</dt>
                <dd class="big">
                  <Interval value={row.cnps} low={row.cnps_low} high={row.cnps_high} suppressed={row.suppressed} />
                </dd>
                <dd class="detail">{t("impact.scored", { n: fmt.count(row.scored) })}</dd>
              </div>
              <div class="figure">
                <dt>{t("impact.mean_shift")}</dt>
                <dd class="big">
                  <ShiftFigure row={row} />
                </dd>
                <dd class="detail">
                  <ShiftSignificance row={row} />
                </dd>
              </div>
            </dl>
          );
        }}
      </Show>
    </Section>
  );
}

/** Creates a touchpoint, or edits `touchpoint`. */
function TouchpointForm(props: { touchpoint?: Touchpoint; onDone: (saved: Touchpoint | null) => void }) {
  const { t } = useApp();
  const existing = props.touchpoint;
  const [name, setName] = useState(existing?.name ?? "");
  const [kind, setKind] = useState<Kind>(existing?.kind ?? "employer_created");
  const [channel, setChannel] = useState<Channel>(existing?.channel ?? "careers_site");
  const [stage, setStage] = useState<Stage>(existing?.stage ?? "awareness");
  const [description, setDescription] = useState(existing?.description ?? "");
  const { errors, formError, saving, submit } = useForm({ name: "name", kind: "kind", channel: "channel", stage: "stage", description: "description" });
  const prefix = existing ? `tp-${existing.id}` : "tp-new";
  const save = async () => {
    const body = { name: name.trim(), kind, channel, stage, description: description.trim() || null };
    const saved = existing
      ? await unwrap(api.PATCH("/api/v1/touchpoints/{id}", { params: { path: { id: existing.id } }, body }))
      : await unwrap(api.POST("/api/v1/touchpoints", { body }));
    props.onDone(saved);
  };
  return (
    <form onSubmit={(event) => submit(event, save, () => required(t, { name }))} noValidate class="form-grid">
      <FormError message={formError} />
      <Field id={`${prefix}-name`} label={t("touchpoint.name")} error={errors.name}>
        {(control) => <input {...control} type="text" maxLength={200} required value={name} onInput={(e) => setName(e.currentTarget.value)} />}
      </Field>
      <Select id={`${prefix}-kind`} label={t("touchpoint.kind")} value={kind} options={KINDS} labelOf={(k) => t(`kind.${k}`)} onChange={setKind} error={errors.kind} />
      <Select
        id={`${prefix}-channel`}
        label={t("touchpoint.channel")}
        value={channel}
        options={CHANNELS}
        labelOf={(c) => t(`channel.${c}`)}
        onChange={setChannel}
        error={errors.channel}
      />
      <Select id={`${prefix}-stage`} label={t("touchpoint.stage")} value={stage} options={STAGES} labelOf={(s) => t(`stage.${s}`)} onChange={setStage} error={errors.stage} />
      <Field id={`${prefix}-description`} label={t("touchpoint.description")} hint={t("form.optional")} error={errors.description}>
        {(control) => <textarea {...control} maxLength={2000} rows={3} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />}
      </Field>
      <FormActions saving={saving} label={existing ? t("common.save") : t("touchpoints.create")} onCancel={() => props.onDone(null)} />
    </form>
  );
}
