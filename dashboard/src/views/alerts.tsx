// Alerts and webhooks (/app/alerts): the alerts (every role reads them;
// recruiters and admins acknowledge and resolve), and for admins the alert
// rules and the webhook endpoints with their delivery state and, one
// endpoint at a time (`?log=ID`), their delivery log.
import { useRef, useState } from "preact/hooks";
import { allPages, api, firstPages, unwrap, type Kind, type Schemas, type Stage, type Touchpoint } from "../api";
import { loadCatalog } from "../catalog";
import { setQuery, useLocation } from "../router";
import { useApp } from "../state";
import { KINDS, STAGES } from "../vocabulary";
import {
  CheckboxGrid,
  Field,
  FormActions,
  FormError,
  num,
  Page,
  required,
  RowButton,
  Section,
  Select,
  Show,
  ShowPages,
  StatusNote,
  Table,
  ToggleButton,
  useActions,
  useForm,
  useLoad,
  type Loaded,
} from "../ui";

type Alert = Schemas["Alert"];
type AlertStatus = Schemas["AlertStatus"];
type Rule = Schemas["AlertRule"];
type Endpoint = Schemas["WebhookEndpoint"];
type EventType = Schemas["WebhookEventType"];
type GroupBy = Schemas["AlertGroupBy"];
type Period = Schemas["AlertPeriod"];

const STATUSES: readonly AlertStatus[] = ["open", "acknowledged", "resolved"];
const EVENT_TYPES: readonly EventType[] = [
  "encounter.created",
  "encounter.updated",
  "encounter.deleted",
  "candidate.erased",
  "survey.answered",
  "alert.opened",
  "alert.resolved",
];
const GROUP_BYS: readonly GroupBy[] = ["touchpoint", "kind", "channel", "stage", "all"];
const PERIODS: readonly Period[] = ["day", "week", "month"];

export function Alerts() {
  const { t, can } = useApp();
  const catalog = useLoad(() => loadCatalog(), []);
  // Rule names for admins; the other roles may not read rules.
  const rules = useLoad(
    () =>
      can.admin
        ? allPages((cursor) => unwrap(api.GET("/api/v1/alert-rules", { params: { query: { limit: 500, ...(cursor ? { cursor } : {}) } } })))
        : Promise.resolve([] as Rule[]),
    [can.admin],
  );
  const names = new Map((catalog.data ?? []).map((tp) => [String(tp.id), tp.name]));
  return (
    <Page title={t("nav.alerts")}>
      <AlertList touchpoints={names} rules={rules.data ?? []} />
      {can.admin && (
        <>
          <RulesSection loaded={rules} touchpoints={catalog.data ?? []} />
          <WebhooksSection />
        </>
      )}
    </Page>
  );
}

function AlertList(props: { touchpoints: Map<string, string>; rules: Rule[] }) {
  const { t, fmt, can } = useApp();
  const [status, setStatus] = useState<AlertStatus | "">("open");
  const [pages, setPages] = useState(1);
  const actions = useActions();
  const loaded = useLoad(
    () =>
      firstPages(pages, (cursor) =>
        unwrap(
          api.GET("/api/v1/alerts", { params: { query: { limit: 50, ...(status ? { status } : {}), ...(cursor ? { cursor } : {}) } } }),
        ),
      ),
    [status, pages],
  );
  const act = (alert: Alert, action: "acknowledge" | "resolve") =>
    actions.run(async () => {
      const path = action === "acknowledge" ? "/api/v1/alerts/{id}/acknowledge" : "/api/v1/alerts/{id}/resolve";
      await unwrap(api.POST(path, { params: { path: { id: alert.id } } }));
      loaded.reload();
    });
  const ruleName = (id: number) => props.rules.find((r) => r.id === id)?.name ?? t("alerts.rule_n", { id });
  return (
    <Section
      title={t("alerts.alerts")}
      id="alert-list"
      busy={loaded.loading}
      actions={
        <div class="inline-controls">
          <Field id="alert-status" label={t("alerts.status")}>
            {(control) => (
              <select
                {...control}
                value={status}
                onChange={(e) => {
                  setStatus(e.currentTarget.value as AlertStatus | "");
                  setPages(1);
                }}
              >
                <option value="">{t("alerts.any_status")}</option>
                {STATUSES.map((s) => (
                  <option value={s}>{t(`alert_status.${s}`)}</option>
                ))}
              </select>
            )}
          </Field>
        </div>
      }
    >
      <FormError message={actions.error} />
      <ShowPages loaded={loaded} none={t("alerts.none")} onMore={() => setPages(pages + 1)}>
        {(rows) => (
          <Table columns={[t("alerts.opened"), t("alerts.what"), t("alerts.status"), can.handleAlerts && t("common.actions")]}>
            {rows.map((alert) => (
              <tr>
                <th scope="row">{fmt.dateTime(alert.opened_at)}</th>
                <td>
                  <AlertWhat alert={alert} touchpoints={props.touchpoints} />
                  <span class="cell-detail">{ruleName(alert.rule_id)}</span>
                </td>
                <td>
                  <span class={`badge status-${alert.status}`}>{t(`alert_status.${alert.status}`)}</span>
                  {alert.acknowledged_at && alert.status === "acknowledged" && (
                    <span class="cell-detail">{fmt.dateTime(alert.acknowledged_at)}</span>
                  )}
                  {alert.resolved_at && <span class="cell-detail">{fmt.dateTime(alert.resolved_at)}</span>}
                </td>
                {can.handleAlerts && (
                  <td class="actions">
                    {alert.status === "open" && (
                      <button type="button" class="secondary small" onClick={() => act(alert, "acknowledge")}>
                        {t("alerts.acknowledge")}
                      </button>
                    )}
                    {alert.status !== "resolved" && (
                      <button type="button" class="secondary small" onClick={() => act(alert, "resolve")}>
                        {t("alerts.resolve")}
                      </button>
                    )}
                  </td>
                )}
              </tr>
            ))}
          </Table>
        )}
      </ShowPages>
    </Section>
  );
}

/** What an alert says, in words. */
function AlertWhat(props: { alert: Alert; touchpoints: Map<string, string> }) {
  const { t, fmt } = useApp();
  const d = props.alert.details;
  if (d.score !== null) {
    const touchpoint = props.touchpoints.get(String(d.touchpoint_id)) ?? `#${d.touchpoint_id}`;
    return (
      <span>
        {t("alerts.detractor", { score: d.score, threshold: d.threshold ?? "", touchpoint })}{" "}
        {d.candidate_id !== null && <a href={`/app/candidates/${d.candidate_id}`}>{t("alerts.see_journey")}</a>}
      </span>
    );
  }
  const group = props.alert.group;
  const groupLabel =
    d.group_by === "touchpoint"
      ? props.touchpoints.get(group) ?? `#${group}`
      : d.group_by === "kind"
        ? t(`kind.${group as Kind}`)
        : d.group_by === "stage"
          ? t(`stage.${group as Stage}`)
          : d.group_by === "channel"
            ? t(`channel.${group as Schemas["Channel"]}`)
            : t("alerts.all_touchpoints");
  return (
    <span>
      {t("alerts.drop", {
        group: groupLabel,
        from: fmt.day(props.alert.period_start),
        cnps: d.cnps === null ? "–" : fmt.signed(d.cnps, 1),
        n: d.scored === null ? "–" : fmt.count(d.scored),
        baseline: d.baseline_cnps === null ? "–" : fmt.signed(d.baseline_cnps, 1),
        bn: d.baseline_scored === null ? "–" : fmt.count(d.baseline_scored),
      })}
      {d.p_value !== null && <span class="cell-detail">p {fmt.p(d.p_value)} · {d.signal ?? ""}</span>}
    </span>
  );
}

// --- alert rules (admin) ---------------------------------------------------
function RulesSection(props: { loaded: Loaded<Rule[]>; touchpoints: Touchpoint[] }) {
  const { t } = useApp();
  const [creating, setCreating] = useState(false);
  const { message, setMessage, error, run: act } = useActions();
  const run = (what: () => Promise<unknown>) =>
    act(async () => {
      await what();
      props.loaded.reload();
    });
  return (
    <Section
      title={t("rules.title")}
      id="rules"
      busy={props.loaded.loading}
      actions={
        <ToggleButton open={creating} onToggle={setCreating}>
          {t("rules.new")}
        </ToggleButton>
      }
    >
      {creating && (
        <RuleForm
          touchpoints={props.touchpoints}
          onDone={(saved) => {
            setCreating(false);
            if (saved) props.loaded.reload();
          }}
        />
      )}
      <StatusNote message={message} />
      <FormError message={error} />
      <Show loaded={props.loaded}>
        {(rules) =>
          rules.length === 0 ? (
            <p class="muted">{t("rules.none")}</p>
          ) : (
            <Table columns={[t("rules.name"), t("rules.kind"), t("rules.settings"), t("rules.state"), t("common.actions")]}>
              {rules.map((rule) => (
                <tr>
                  <th scope="row">{rule.name}</th>
                  <td>{t(`rule_kind.${rule.kind}`)}</td>
                  <td>
                    <RuleSettings rule={rule} touchpoints={props.touchpoints} />
                  </td>
                  <td>{rule.enabled ? t("rules.enabled") : t("rules.disabled")}</td>
                  <td class="actions">
                    <RowButton
                      label={rule.enabled ? t("rules.disable") : t("rules.enable")}
                      row={rule.name}
                      onClick={() =>
                        run(() => unwrap(api.PATCH("/api/v1/alert-rules/{id}", { params: { path: { id: rule.id } }, body: { enabled: !rule.enabled } })))
                      }
                    />
                    {rule.kind === "drop" && (
                      <RowButton
                        label={t("rules.evaluate")}
                        row={rule.name}
                        onClick={() =>
                          run(async () => {
                            const result = await unwrap(
                              api.POST("/api/v1/alert-rules/{id}/evaluate", { params: { path: { id: rule.id } }, body: {} }),
                            );
                            setMessage(
                              t("rules.evaluated", {
                                tested: result.groups_tested,
                                opened: result.opened.length,
                                resolved: result.resolved.length,
                              }),
                            );
                          })
                        }
                      />
                    )}
                    <RowButton
                      label={t("common.delete")}
                      row={rule.name}
                      danger
                      onClick={() =>
                        confirm(t("rules.delete_confirm", { name: rule.name })) &&
                        run(() => unwrap(api.DELETE("/api/v1/alert-rules/{id}", { params: { path: { id: rule.id } } })))
                      }
                    />
                  </td>
                </tr>
              ))}
            </Table>
          )
        }
      </Show>
    </Section>
  );
}

function RuleSettings(props: { rule: Rule; touchpoints: Touchpoint[] }) {
  const { t } = useApp();
  const r = props.rule;
  const scope = [
    ...r.kinds.map((k) => t(`kind.${k}`)),
    ...r.stages.map((s) => t(`stage.${s}`)),
    ...r.touchpoint_ids.map((id) => props.touchpoints.find((tp) => tp.id === id)?.name ?? `#${id}`),
  ];
  const what =
    r.kind === "detractor"
      ? t("rules.detractor_settings", { threshold: r.threshold })
      : t("rules.drop_settings", {
          group: t(`alert_group.${r.group_by}`),
          period: t(`bucket.${r.period}`),
          baseline: r.baseline_periods,
          min: r.min_scores,
        }) + (r.cusum ? ` ${t("rules.with_cusum")}` : "");
  return (
    <>
      {what}
      <span class="cell-detail">{scope.length ? t("rules.watching", { list: scope.join(", ") }) : t("rules.watching_all")}</span>
    </>
  );
}

function RuleForm(props: { touchpoints: Touchpoint[]; onDone: (saved: boolean) => void }) {
  const { t } = useApp();
  const [name, setName] = useState("");
  const [kind, setKind] = useState<Schemas["AlertRuleKind"]>("detractor");
  const [threshold, setThreshold] = useState("6");
  const [groupBy, setGroupBy] = useState<GroupBy>("touchpoint");
  const [period, setPeriod] = useState<Period>("week");
  const [baseline, setBaseline] = useState("4");
  const [minScores, setMinScores] = useState("30");
  const [cusum, setCusum] = useState(false);
  const [kinds, setKinds] = useState<Kind[]>([]);
  const [stages, setStages] = useState<Stage[]>([]);
  const [touchpointIds, setTouchpointIds] = useState<number[]>([]);
  const { errors, formError, saving, submit } = useForm({
    name: "name",
    threshold: "threshold",
    baseline_periods: "baseline",
    min_scores: "minScores",
    touchpoint_ids: "touchpoints",
    group_by: "groupBy",
    period: "period",
  });
  const create = async () => {
    const scope = { kinds, stages, touchpoint_ids: touchpointIds };
    const body =
      kind === "detractor"
        ? { name: name.trim(), kind, threshold: Number(threshold), ...scope }
        : {
            name: name.trim(),
            kind,
            group_by: groupBy,
            period,
            baseline_periods: Number(baseline),
            min_scores: Number(minScores),
            cusum,
            ...scope,
          };
    await unwrap(api.POST("/api/v1/alert-rules", { body }));
    props.onDone(true);
  };
  return (
    <form class="form-grid bordered" onSubmit={(event) => submit(event, create, () => required(t, { name }))} noValidate>
      <FormError message={formError} />
      <Field id="rule-name" label={t("rules.name")} error={errors.name}>
        {(control) => <input {...control} type="text" maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} />}
      </Field>
      <Select id="rule-kind" label={t("rules.kind")} value={kind} options={["detractor", "drop"] as const} labelOf={(k) => t(`rule_kind.${k}`)} onChange={setKind} />
      {kind === "detractor" ? (
        <Field id="rule-threshold" label={t("rules.threshold")} hint={t("rules.threshold_hint")} error={errors.threshold}>
          {(control) => <input {...control} type="number" min={0} max={10} value={threshold} onInput={(e) => setThreshold(e.currentTarget.value)} />}
        </Field>
      ) : (
        <>
          <Select id="rule-group" label={t("rules.group_by")} value={groupBy} options={GROUP_BYS} labelOf={(g) => t(`alert_group.${g}`)} onChange={setGroupBy} error={errors.groupBy} />
          <Select id="rule-period" label={t("rules.period")} value={period} options={PERIODS} labelOf={(p) => t(`bucket.${p}`)} onChange={setPeriod} error={errors.period} />
          <Field id="rule-baseline" label={t("rules.baseline")} hint={t("rules.baseline_hint")} error={errors.baseline}>
            {(control) => <input {...control} type="number" min={1} max={52} value={baseline} onInput={(e) => setBaseline(e.currentTarget.value)} />}
          </Field>
          <Field id="rule-min" label={t("rules.min_scores")} hint={t("rules.min_scores_hint")} error={errors.minScores}>
            {(control) => <input {...control} type="number" min={1} max={100000} value={minScores} onInput={(e) => setMinScores(e.currentTarget.value)} />}
          </Field>
          <label class="checkbox">
            <input type="checkbox" checked={cusum} onChange={(e) => setCusum(e.currentTarget.checked)} />
            {t("rules.cusum")}
          </label>
        </>
      )}
      <fieldset class="wide">
        <legend>{t("rules.scope")}</legend>
        <p class="hint">{t("rules.scope_hint")}</p>
        <CheckboxGrid options={KINDS} value={kinds} labelOf={(k) => t(`kind.${k}`)} onChange={setKinds} />
        <CheckboxGrid options={STAGES} value={stages} labelOf={(s) => t(`stage.${s}`)} onChange={setStages} />
        <Field id="rule-touchpoints" label={t("rules.touchpoints")} hint={t("rules.touchpoints_hint")} error={errors.touchpoints}>
          {(control) => (
            <select
              {...control}
              multiple
              size={5}
              onChange={(e) => setTouchpointIds(Array.from(e.currentTarget.selectedOptions, (o) => Number(o.value)))}
            >
              {props.touchpoints
                .filter((tp) => !tp.archived_at)
                .map((tp) => (
                  <option value={String(tp.id)} selected={touchpointIds.includes(tp.id)}>
                    {tp.name}
                  </option>
                ))}
            </select>
          )}
        </Field>
      </fieldset>
      <FormActions saving={saving} label={t("rules.create")} onCancel={() => props.onDone(false)} />
    </form>
  );
}

// --- webhook endpoints (admin) ---------------------------------------------
function WebhooksSection() {
  const { t, fmt } = useApp();
  const { query } = useLocation();
  const logOf = Number(query.get("log")) || null;
  // Each change made here (a ping, say) adds attempts: the open log reloads.
  const [changes, setChanges] = useState(0);
  const [creating, setCreating] = useState(false);
  const [secret, setSecret] = useState<{ url: string; secret: string } | null>(null);
  const { message, setMessage, error, run: act } = useActions();
  const loaded = useLoad(
    () => allPages((cursor) => unwrap(api.GET("/api/v1/webhooks", { params: { query: { limit: 500, ...(cursor ? { cursor } : {}) } } }))),
    [],
  );
  const run = (what: () => Promise<unknown>) =>
    act(async () => {
      await what();
      loaded.reload();
      setChanges((n) => n + 1);
    });
  return (
    <Section
      title={t("webhooks.title")}
      id="webhooks"
      busy={loaded.loading}
      actions={
        <ToggleButton open={creating} onToggle={setCreating}>
          {t("webhooks.new")}
        </ToggleButton>
      }
    >
      {creating && (
        <WebhookForm
          onDone={(created) => {
            setCreating(false);
            if (created) {
              setSecret({ url: created.endpoint.url, secret: created.secret });
              loaded.reload();
            }
          }}
        />
      )}
      {secret && <OnceSecret label={t("webhooks.secret", { url: secret.url })} value={secret.secret} onClose={() => setSecret(null)} />}
      <StatusNote message={message} class="notice" />
      <FormError message={error} />
      <Show loaded={loaded}>
        {(endpoints: Endpoint[]) =>
          endpoints.length === 0 ? (
            <p class="muted">{t("webhooks.none")}</p>
          ) : (
            <>
              <Table columns={[t("webhooks.url"), t("webhooks.events"), t("webhooks.state"), num(t("webhooks.backlog")), t("common.actions")]}>
                {endpoints.map((e) => (
                  <tr>
                    <th scope="row">
                      <span class="break">{e.url}</span>
                      {e.description && <span class="cell-detail">{e.description}</span>}
                    </th>
                    <td>{e.event_types.join(", ")}</td>
                    <td>
                      {e.enabled ? (
                        <span class="badge status-ok">{t("webhooks.enabled")}</span>
                      ) : (
                        <span class="badge status-open">{t("webhooks.disabled")}</span>
                      )}
                      {e.disabled_reason && <span class="cell-detail">{e.disabled_reason}</span>}
                      {e.consecutive_failures > 0 && (
                        <span class="cell-detail">
                          {t("webhooks.failures", { n: e.consecutive_failures, attempts: e.attempts, next: fmt.dateTime(e.next_attempt_at) })}
                        </span>
                      )}
                      {e.previous_secret_expires_at && (
                        <span class="cell-detail">{t("webhooks.rotating", { date: fmt.dateTime(e.previous_secret_expires_at) })}</span>
                      )}
                    </td>
                    <td class="num">{fmt.count(e.backlog)}</td>
                    <td class="actions">
                      <RowButton
                        label={t("webhooks.log")}
                        row={e.url}
                        expanded={logOf === e.id}
                        controls={logOf === e.id ? `deliveries-${e.id}-section` : undefined}
                        onClick={() => setQuery({ log: logOf === e.id ? null : String(e.id) })}
                      />
                      <RowButton
                        label={e.enabled ? t("webhooks.disable") : t("webhooks.enable")}
                        row={e.url}
                        onClick={() => run(() => unwrap(api.PATCH("/api/v1/webhooks/{id}", { params: { path: { id: e.id } }, body: { enabled: !e.enabled } })))}
                      />
                      <RowButton
                        label={t("webhooks.ping")}
                        row={e.url}
                        onClick={() =>
                          run(async () => {
                            const ping = await unwrap(api.POST("/api/v1/webhooks/{id}/ping", { params: { path: { id: e.id } } }));
                            setMessage(
                              ping.delivered
                                ? t("webhooks.ping_ok", { status: ping.status_code ?? "", ms: ping.latency_ms })
                                : t("webhooks.ping_failed", { error: ping.error ?? String(ping.status_code ?? "") }),
                            );
                          })
                        }
                      />
                      <RowButton
                        label={t("webhooks.rotate")}
                        row={e.url}
                        onClick={() =>
                          confirm(t("webhooks.rotate_confirm")) &&
                          run(async () => {
                            const rotated = await unwrap(
                              api.POST("/api/v1/webhooks/{id}/rotate-secret", { params: { path: { id: e.id } }, body: {} }),
                            );
                            setSecret({ url: rotated.endpoint.url, secret: rotated.secret });
                          })
                        }
                      />
                      <RowButton
                        label={t("common.delete")}
                        row={e.url}
                        danger
                        onClick={() =>
                          confirm(t("webhooks.delete_confirm", { url: e.url })) &&
                          run(async () => {
                            await unwrap(api.DELETE("/api/v1/webhooks/{id}", { params: { path: { id: e.id } } }));
                            if (logOf === e.id) setQuery({ log: null });
                          })
                        }
                      />
                    </td>
                  </tr>
                ))}
              </Table>
              {endpoints
                .filter((e) => e.id === logOf)
                .map((e) => (
                  <DeliveryLog key={e.id} endpoint={e} changes={changes} />
                ))}
            </>
          )
        }
      </Show>
    </Section>
  );
}

const DELIVERIES_PAGE = 20;

/** An endpoint's delivery attempts, newest first, each event's type, and
 * "send again" for an event (not for a ping). */
function DeliveryLog(props: { endpoint: Endpoint; changes: number }) {
  const { t, fmt } = useApp();
  const id = props.endpoint.id;
  const [pages, setPages] = useState(1);
  const { message, setMessage, error, run } = useActions();
  const [sending, setSending] = useState<number | null>(null);
  // Event types by event id: an event does not change, so it is read once.
  const types = useRef(new Map<number, EventType>());
  const loaded = useLoad(async () => {
    const { rows, more } = await firstPages(pages, (cursor) =>
      unwrap(
        api.GET("/api/v1/webhooks/{id}/deliveries", {
          params: { path: { id }, query: { limit: DELIVERIES_PAGE, ...(cursor ? { cursor } : {}) } },
        }),
      ),
    );
    const unknown = [...new Set(rows.map((r) => r.event_id))].filter((e): e is number => e !== null && !types.current.has(e));
    await Promise.all(
      unknown.map((event) =>
        unwrap(api.GET("/api/v1/webhook-events/{id}", { params: { path: { id: event } } })).then(
          (found) => void types.current.set(event, found.type),
          // Its id is shown all the same.
          () => undefined,
        ),
      ),
    );
    return { rows, more };
  }, [id, pages, props.changes]);
  const again = async (event: number) => {
    // Not `disabled` while it runs: a disabled button would drop the focus.
    if (sending !== null) return;
    setSending(event);
    await run(async () => {
      await unwrap(api.POST("/api/v1/webhooks/{id}/redeliveries", { params: { path: { id } }, body: { event_id: event } }));
      setMessage(t("deliveries.queued", { event: `evt_${event}` }));
    });
    setSending(null);
  };
  return (
    <Section
      title={t("deliveries.title", { url: props.endpoint.url })}
      id={`deliveries-${id}`}
      level={3}
      busy={loaded.loading}
      actions={
        <button type="button" class="secondary small" onClick={() => loaded.reload()}>
          {t("deliveries.refresh")}
        </button>
      }
    >
      <p class="hint">{t("deliveries.intro")}</p>
      <StatusNote message={message} />
      <FormError message={error} />
      <ShowPages loaded={loaded} none={t("deliveries.none")} onMore={() => setPages(pages + 1)}>
        {(rows) => (
          <Table
            class="compact deliveries"
            columns={[
              t("deliveries.time"),
              t("deliveries.event"),
              t("deliveries.result"),
              num(t("deliveries.latency")),
              t("deliveries.error"),
              t("common.actions"),
            ]}
          >
            {rows.map((d) => {
              const ok = d.status_code !== null && d.status_code >= 200 && d.status_code < 300;
              const type = d.event_id === null ? undefined : types.current.get(d.event_id);
              return (
                <tr data-delivery={d.id}>
                  <th scope="row">
                    <time dateTime={d.attempted_at}>{fmt.dateTime(d.attempted_at)}</time>
                  </th>
                  <td>
                    {d.event_id === null ? (
                      t("deliveries.ping")
                    ) : (
                      <>
                        <code>evt_{d.event_id}</code>
                        {type && <span class="cell-detail">{type}</span>}
                      </>
                    )}
                  </td>
                  <td>
                    <span class={`badge ${ok ? "status-ok" : "status-open"}`}>{ok ? t("deliveries.delivered") : t("deliveries.failed")}</span>
                    <span class="cell-detail">
                      {d.status_code === null ? t("deliveries.no_answer") : t("deliveries.http", { status: d.status_code })}
                    </span>
                  </td>
                  <td class="num">{t("deliveries.ms", { n: fmt.count(d.latency_ms) })}</td>
                  <td>
                    {d.error ? (
                      <span class="wrap-anywhere">{d.error}</span>
                    ) : d.response_prefix ? (
                      <span class="cell-detail wrap-anywhere">{t("deliveries.answer", { text: d.response_prefix })}</span>
                    ) : (
                      <span class="muted">–</span>
                    )}
                  </td>
                  <td class="actions">
                    {d.event_id !== null && (
                      <RowButton
                        label={t("deliveries.send_again")}
                        row={`evt_${d.event_id}, ${fmt.dateTime(d.attempted_at)}`}
                        onClick={() => again(d.event_id!)}
                      />
                    )}
                  </td>
                </tr>
              );
            })}
          </Table>
        )}
      </ShowPages>
    </Section>
  );
}

function WebhookForm(props: { onDone: (created: Schemas["WebhookEndpointWithSecret"] | null) => void }) {
  const { t } = useApp();
  const [url, setUrl] = useState("https://");
  const [description, setDescription] = useState("");
  const [types, setTypes] = useState<EventType[]>(["alert.opened", "alert.resolved"]);
  const [personal, setPersonal] = useState(false);
  const { errors, formError, saving, submit } = useForm({ url: "url", description: "description", event_types: "types" });
  const create = async () => {
    const created = await unwrap(
      api.POST("/api/v1/webhooks", {
        body: { url: url.trim(), event_types: types, include_personal_data: personal, ...(description.trim() ? { description: description.trim() } : {}) },
      }),
    );
    props.onDone(created);
  };
  return (
    <form class="form-grid bordered" onSubmit={(event) => submit(event, create)} noValidate>
      <FormError message={formError} />
      <Field id="webhook-url" label={t("webhooks.url")} hint={t("webhooks.url_hint")} error={errors.url}>
        {(control) => <input {...control} type="url" maxLength={2000} value={url} onInput={(e) => setUrl(e.currentTarget.value)} />}
      </Field>
      <Field id="webhook-description" label={t("webhooks.description")} hint={t("form.optional")} error={errors.description}>
        {(control) => <input {...control} type="text" maxLength={200} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />}
      </Field>
      <fieldset class="wide" aria-describedby={errors.types ? "webhook-types-error" : undefined}>
        <legend>{t("webhooks.events")}</legend>
        <CheckboxGrid options={EVENT_TYPES} value={types} labelOf={(type) => <code>{type}</code>} onChange={setTypes} />
        {errors.types && (
          <p class="field-error" id="webhook-types-error">
            {errors.types}
          </p>
        )}
      </fieldset>
      <label class="checkbox wide">
        <input type="checkbox" checked={personal} onChange={(e) => setPersonal(e.currentTarget.checked)} />
        {t("webhooks.personal")}
      </label>
      <FormActions saving={saving} label={t("webhooks.create")} onCancel={() => props.onDone(null)} />
    </form>
  );
}

/** A secret or token shown once, to copy now. */
export function OnceSecret(props: { label: string; value: string; onClose: () => void }) {
  const { t } = useApp();
  const [copied, setCopied] = useState(false);
  return (
    <div class="notice success once" role="status">
      <p>
        <strong>{props.label}</strong>
      </p>
      <p class="hint">{t("secret.once")}</p>
      <div class="copy-row">
        <label class="visually-hidden" for="once-secret">
          {props.label}
        </label>
        <input id="once-secret" type="text" readOnly value={props.value} onFocus={(e) => e.currentTarget.select()} />
        <button
          type="button"
          class="secondary"
          onClick={() =>
            navigator.clipboard?.writeText(props.value).then(
              () => setCopied(true),
              () => setCopied(false),
            )
          }
        >
          {copied ? t("secret.copied") : t("secret.copy")}
        </button>
        <button type="button" class="secondary" onClick={props.onClose}>
          {t("secret.done")}
        </button>
      </div>
    </div>
  );
}

