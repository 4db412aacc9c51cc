// Candidates (/app/candidates): search by part of the applicant-tracking
// system's reference or of the name (`?q=`), browse by stage, or both; one
// candidate's journey (/app/candidates/{id}) as a timeline of encounters,
// scores and shifts.
import type { InputEventHandler, KeyboardEventHandler } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import { api, unwrap, type Candidate, type Schemas, type Stage } from "../api";
import { PALETTE, TrendChart } from "../chart";
import { setQuery, useLocation } from "../router";
import { useApp } from "../state";
import { STAGES } from "../vocabulary";
import { ErrorNote, Field, Loading, MoreButton, Page, Section, Shift, Show, Table, useLoad, type FieldControl } from "../ui";

const PAGE = 50;
/** The API's bounds for `q`. */
export const SEARCH_MAX = 200;

/** One page of candidates whose reference or name contains `q` (when
 * given), at `stage` (when given). */
export function searchCandidates(q: string, stage: Stage | "", limit: number, cursor?: string) {
  return unwrap(
    api.GET("/api/v1/candidates", {
      params: {
        query: {
          limit,
          ...(q ? { q } : {}),
          ...(stage ? { stage } : {}),
          ...(cursor ? { cursor } : {}),
        },
      },
    }),
  );
}

/** A box to search by part of a reference or a name (here and in the
 * form's picker). */
export function SearchInput(
  props: FieldControl & { value: string; onInput: InputEventHandler<HTMLInputElement>; onKeyDown?: KeyboardEventHandler<HTMLInputElement> },
) {
  return <input {...props} type="search" maxLength={SEARCH_MAX} autoComplete="off" spellcheck={false} />;
}

export function Candidates() {
  const { t } = useApp();
  const { query } = useLocation();
  // `ref` was the exact-reference lookup of earlier links: now a search.
  const q = (query.get("q") ?? query.get("ref") ?? "").trim().slice(0, SEARCH_MAX);
  const stage = (query.get("stage") ?? "") as Stage | "";
  const [draft, setDraft] = useState(q);
  const [draftStage, setDraftStage] = useState<Stage | "">(stage);
  useEffect(() => {
    setDraft(q);
    setDraftStage(stage);
  }, [q, stage]);
  const search = (event: Event) => {
    event.preventDefault();
    setQuery({ q: draft.trim() || null, ref: null, stage: draftStage || null });
  };
  return (
    <Page title={t("nav.candidates")}>
      <form class="search" role="search" aria-label={t("candidates.search_label")} onSubmit={search} noValidate>
        <Field id="candidate-q" label={t("candidates.q")} hint={t("candidates.q_hint")}>
          {(control) => <SearchInput {...control} value={draft} onInput={(e) => setDraft(e.currentTarget.value)} />}
        </Field>
        <Field id="candidate-stage" label={t("candidates.stage")}>
          {(control) => (
            <select {...control} value={draftStage} onChange={(e) => setDraftStage(e.currentTarget.value as Stage | "")}>
              <option value="">{t("candidates.any_stage")}</option>
              {STAGES.map((s) => (
                <option value={s}>{t(`stage.${s}`)}</option>
              ))}
            </select>
          )}
        </Field>
        <button type="submit">{t("candidates.search")}</button>
        {(q || stage) && (
          <a class="clear-search" href="/app/candidates">
            {t("candidates.clear")}
          </a>
        )}
      </form>
      <CandidateList key={`${q}|${stage}`} q={q} stage={stage} />
    </Page>
  );
}

function CandidateList(props: { q: string; stage: Stage | "" }) {
  const { t, fmt } = useApp();
  const [rows, setRows] = useState<Candidate[]>([]);
  const [cursor, setCursor] = useState<string | null | undefined>(undefined);
  const [error, setError] = useState<Parameters<typeof ErrorNote>[0]["error"]>();
  const [loading, setLoading] = useState(true);
  const load = async (from: string | undefined) => {
    setLoading(true);
    setError(undefined);
    try {
      const page = await searchCandidates(props.q, props.stage, PAGE, from);
      setRows((previous) => (from ? [...previous, ...page.items] : page.items));
      setCursor(page.next_cursor ?? null);
    } catch (caught) {
      setError(caught as Parameters<typeof ErrorNote>[0]["error"]);
    } finally {
      setLoading(false);
    }
  };
  useEffect(() => {
    void load(undefined);
  }, []);
  const searching = props.q !== "" || props.stage !== "";
  const stageName = props.stage ? t(`stage.${props.stage}`) : "";
  const empty = props.q
    ? props.stage
      ? t("candidates.no_match_at", { q: props.q, stage: stageName })
      : t("candidates.no_match", { q: props.q })
    : props.stage
      ? t("candidates.none_at", { stage: stageName })
      : t("candidates.none");
  return (
    <Section title={searching ? t("candidates.found") : t("candidates.list")} id="candidate-list" busy={loading}>
      {error && <ErrorNote error={error} retry={() => load(cursor ?? undefined)} />}
      {/* Announced when a search ends: how many rows, and whether more follow. */}
      <p class="muted result-count" role="status">
        {loading || error
          ? null
          : rows.length === 0
            ? empty
            : cursor
              ? t("candidates.shown_more", { n: fmt.count(rows.length) })
              : t("candidates.shown", { n: fmt.count(rows.length) })}
      </p>
      {rows.length > 0 && <CandidateTable rows={rows} />}
      {cursor && <MoreButton disabled={loading} onClick={() => load(cursor)} />}
      {loading && <Loading />}
    </Section>
  );
}

function CandidateTable(props: { rows: Candidate[] }) {
  const { t, fmt } = useApp();
  return (
    <Table columns={[t("candidate.ref"), t("candidate.name"), t("candidate.stage"), t("candidate.created")]}>
      {props.rows.map((c) => (
        <tr class={c.erased_at ? "erased" : undefined}>
          <th scope="row">
            <a href={`/app/candidates/${c.id}`}>{c.external_ref ?? t("candidate.erased_ref", { id: c.id })}</a>
          </th>
          <td>{c.erased_at ? <span class="badge">{t("candidate.erased")}</span> : c.display_name ?? <span class="muted">–</span>}</td>
          <td>{t(`stage.${c.stage}`)}</td>
          <td>{fmt.dateTime(c.created_at)}</td>
        </tr>
      ))}
    </Table>
  );
}

export function Journey(props: { id: number }) {
  const { t, fmt } = useApp();
  const loaded = useLoad(
    () =>
      Promise.all([
        unwrap(api.GET("/api/v1/candidates/{id}", { params: { path: { id: props.id } } })),
        unwrap(api.GET("/api/v1/candidates/{id}/journey", { params: { path: { id: props.id } } })),
      ]),
    [props.id],
  );
  const candidate = loaded.data?.[0];
  const title = candidate
    ? candidate.erased_at
      ? t("journey.title_erased", { id: candidate.id })
      : t("journey.title", { name: candidate.display_name ?? candidate.external_ref ?? `#${candidate.id}` })
    : t("journey.heading");
  return (
    <Page title={title}>
      <p class="breadcrumb">
        <a href="/app/candidates">{t("nav.candidates")}</a>
      </p>
      <Show loaded={loaded}>
        {([c, journey]) => (
          <>
            {c.erased_at && (
              <p class="notice" role="note">
                {t("journey.erased_note", { date: fmt.dateTime(c.erased_at) })}
              </p>
            )}
            <dl class="facts">
              <div>
                <dt>{t("candidate.ref")}</dt>
                <dd>{c.external_ref ?? <span class="muted">{t("candidate.erased")}</span>}</dd>
              </div>
              <div>
                <dt>{t("candidate.name")}</dt>
                <dd>{c.display_name ?? <span class="muted">{c.erased_at ? t("candidate.erased") : "–"}</span>}</dd>
              </div>
              <div>
                <dt>{t("candidate.email")}</dt>
                <dd>{c.email ?? <span class="muted">{c.erased_at ? t("candidate.erased") : "–"}</span>}</dd>
              </div>
              <div>
                <dt>{t("candidate.stage")}</dt>
                <dd>{t(`stage.${c.stage}`)}</dd>
              </div>
              <div>
                <dt>{t("journey.first_latest")}</dt>
                <dd>
                  {journey.first_score === null ? (
                    <span class="muted">{t("journey.no_scores")}</span>
                  ) : (
                    <>
                      {journey.first_score} → {journey.latest_score}
                      {journey.overall_shift !== null && (
                        <>
                          {" "}
                          (<Shift value={journey.overall_shift} />)
                        </>
                      )}
                    </>
                  )}
                </dd>
              </div>
            </dl>
            <ScoreChart steps={journey.steps} />
            <Section title={t("journey.timeline")} id="timeline">
              {journey.steps.length === 0 ? (
                <p class="muted">{t("journey.empty")}</p>
              ) : (
                <ol class="timeline">
                  {journey.steps.map((step) => (
                    <li class={`step kind-${step.kind}${step.shift ? (step.shift > 0 ? " up" : " down") : ""}`} data-encounter={step.encounter_id}>
                      <p class="step-time">
                        <time dateTime={step.occurred_at}>{fmt.dateTime(step.occurred_at)}</time>
                      </p>
                      <div class="step-body">
                        <p class="step-title">
                          <a href={`/app/touchpoints/${step.touchpoint_id}`}>{step.touchpoint_name}</a>{" "}
                          <span class="badge">{t(`kind.${step.kind}`)}</span>
                        </p>
                        <p class="step-meta">
                          {t(`channel.${step.channel}`)} · {t(`stage.${step.stage}`)} · {t(`source.${step.source}`)}
                        </p>
                        <p class="step-score">
                          {step.score === null ? (
                            <span class="muted">{t("journey.not_scored")}</span>
                          ) : (
                            <>
                              {t("journey.score", { score: step.score })}
                              {step.shift !== null && (
                                <>
                                  {" "}
                                  <Shift value={step.shift} />
                                </>
                              )}
                            </>
                          )}
                        </p>
                        {step.note && <p class="step-note">{step.note}</p>}
                      </div>
                    </li>
                  ))}
                </ol>
              )}
            </Section>
          </>
        )}
      </Show>
    </Page>
  );
}

/** The candidate's scores over time: the timeline below has every figure,
 * so the chart is a picture of it, with a caption. */
function ScoreChart(props: { steps: Schemas["JourneyStep"][] }) {
  const { t, fmt } = useApp();
  const scored = props.steps.filter((step) => step.score !== null);
  const chart = useMemo(
    () => ({
      x: scored.map((step) => Date.parse(step.occurred_at) / 1000),
      series: [{ label: t("journey.score_series"), color: PALETTE[0]!, values: scored.map((step) => step.score) }],
    }),
    [props.steps, t],
  );
  if (scored.length < 2) return null;
  const first = scored[0]!;
  const last = scored[scored.length - 1]!;
  const ups = scored.filter((s) => (s.shift ?? 0) > 0).length;
  const downs = scored.filter((s) => (s.shift ?? 0) < 0).length;
  return (
    <Section title={t("journey.chart")} id="score-chart">
      <figure class="trend">
        <TrendChart x={chart.x} series={chart.series} fmt={fmt} monthly={false} range={[0, 10]} signed={false} moments height={200} />
        <figcaption>
          {t("journey.chart_caption", {
            n: scored.length,
            from: fmt.dateTime(first.occurred_at),
            through: fmt.dateTime(last.occurred_at),
            first: first.score!,
            last: last.score!,
            ups,
            downs,
          })}
        </figcaption>
      </figure>
    </Section>
  );
}
