// Log an encounter (/app/log, recruiters and admins): an existing
// candidate found by part of the reference or the name, or a new one; a
// touchpoint of the catalog; the time (now by default), a score and a note. Each filled form sends one
// Idempotency-Key per request body, kept across retries of that body, so a
// double click or a retry after a lost answer records one encounter.
import { useMemo, useRef, useState } from "preact/hooks";
import { ApiError, api, newIdempotencyKey, unwrap, type Candidate, type Touchpoint } from "../api";
import { loadCatalog } from "../catalog";
import { useApp } from "../state";
import { KINDS } from "../vocabulary";
import { errorsFor, Field, Page, Show, useLoad, type FieldErrors } from "../ui";
import { SearchInput, searchCandidates } from "./candidates";

type Mode = "existing" | "new";
const SCORES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
/** Candidates offered to choose from after a search. */
const MATCHES = 10;

/** "YYYY-MM-DDTHH:MM" in the reader's time zone, as datetime-local wants. */
function localNow(): string {
  const now = new Date();
  now.setSeconds(0, 0);
  return new Date(now.getTime() - now.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}

/** One key per distinct body: the same body again (a retry) reuses it. */
class Keys {
  private byStep = new Map<string, { body: string; key: string }>();
  for(step: string, body: unknown): string {
    const text = JSON.stringify(body);
    const known = this.byStep.get(step);
    if (known && known.body === text) return known.key;
    const key = newIdempotencyKey();
    this.byStep.set(step, { body: text, key });
    return key;
  }
}

export function LogEncounter() {
  const { t } = useApp();
  const catalog = useLoad(() => loadCatalog(), []);
  return (
    <Page title={t("nav.log")} intro={t("log.intro")}>
      <Show loaded={catalog}>{(rows) => <LogForm touchpoints={rows.filter((row) => !row.archived_at)} />}</Show>
    </Page>
  );
}

function LogForm(props: { touchpoints: Touchpoint[] }) {
  const { t, fmt } = useApp();
  const [mode, setMode] = useState<Mode>("existing");
  const [ref, setRef] = useState("");
  const [found, setFound] = useState<Candidate | null>(null);
  // The candidates the last search found (null: no search since typing).
  const [matches, setMatches] = useState<{ rows: Candidate[]; more: boolean } | null>(null);
  const [lookup, setLookup] = useState<"idle" | "busy" | "missing">("idle");
  const [newRef, setNewRef] = useState("");
  const [newName, setNewName] = useState("");
  const [touchpointId, setTouchpointId] = useState("");
  const [occurredAt, setOccurredAt] = useState(localNow);
  const [score, setScore] = useState("");
  const [note, setNote] = useState("");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [formError, setFormError] = useState<string>();
  const [saved, setSaved] = useState<{ candidate: Candidate; encounterId: number } | null>(null);
  const [submitting, setSubmitting] = useState(false);
  // A ref, not state: two clicks in one frame both see the state before either.
  const inFlight = useRef(false);
  const keys = useRef(new Keys());
  const byKind = useMemo(
    () => KINDS.map((kind) => ({ kind, rows: props.touchpoints.filter((tp) => tp.kind === kind) })).filter((g) => g.rows.length > 0),
    [props.touchpoints],
  );

  /** Searches by part of the reference or the name: one candidate found,
   * or one whose reference is exactly the text, is chosen; otherwise the
   * reader chooses among those listed. */
  const find = async (): Promise<{ chosen: Candidate | null; count: number; message: string }> => {
    const wanted = ref.trim();
    if (!wanted) {
      setErrors((e) => ({ ...e, ref: t("form.required") }));
      return { chosen: null, count: 0, message: t("form.required") };
    }
    setLookup("busy");
    try {
      const page = await searchCandidates(wanted, "", MATCHES);
      const rows = page.items.filter((c) => !c.erased_at);
      const chosen = rows.length === 1 ? rows[0]! : (rows.find((c) => c.external_ref === wanted) ?? null);
      setMatches({ rows, more: !!page.next_cursor });
      setFound(chosen);
      setLookup(rows.length > 0 ? "idle" : "missing");
      const message = chosen ? "" : rows.length === 0 ? t("log.no_candidate", { ref: wanted }) : t("log.choose_one", { n: rows.length });
      // Several found: the list says so; the field turns red only on record.
      setErrors((e) => ({ ...e, ref: rows.length > 0 ? "" : message }));
      return { chosen, count: rows.length, message };
    } catch (error) {
      setLookup("idle");
      const message = errorsFor(t, error, {}).form ?? "";
      setErrors((e) => ({ ...e, ref: message }));
      return { chosen: null, count: -1, message };
    }
  };

  const reset = () => {
    setRef("");
    setFound(null);
    setMatches(null);
    setLookup("idle");
    setNewRef("");
    setNewName("");
    setOccurredAt(localNow());
    setScore("");
    setNote("");
    keys.current = new Keys();
  };

  const submit = async (event: Event) => {
    event.preventDefault();
    if (inFlight.current) return;
    inFlight.current = true;
    setSubmitting(true);
    setSaved(null);
    setFormError(undefined);
    try {
      await record();
    } finally {
      inFlight.current = false;
      setSubmitting(false);
    }
  };

  const record = async () => {
    const local: FieldErrors = {};
    if (mode === "new" && !newRef.trim()) local.newRef = t("form.required");
    if (!touchpointId) local.touchpoint = t("log.choose_touchpoint");
    const when = new Date(occurredAt);
    if (!occurredAt || Number.isNaN(when.getTime())) local.occurredAt = t("log.bad_time");
    let candidate = mode === "existing" ? found : null;
    if (mode === "existing" && !candidate) {
      const search = await find();
      candidate = search.chosen;
      if (!candidate) local.ref = search.message || t("log.no_candidate", { ref: ref.trim() });
    }
    setErrors(local);
    if (Object.values(local).some(Boolean)) return;

    try {
      if (mode === "new") {
        const body = { external_ref: newRef.trim(), ...(newName.trim() ? { display_name: newName.trim() } : {}) };
        candidate = await unwrap(
          api.POST("/api/v1/candidates", { body, headers: { "Idempotency-Key": keys.current.for("candidate", body) } }),
        );
      }
      const body = {
        candidate_id: candidate!.id,
        touchpoint_id: Number(touchpointId),
        occurred_at: when.toISOString().replace(/\.\d{3}Z$/, "Z"),
        source: "recruiter_observation" as const,
        score: score === "" ? null : Number(score),
        note: note.trim() || null,
      };
      const encounter = await unwrap(
        api.POST("/api/v1/encounters", { body, headers: { "Idempotency-Key": keys.current.for("encounter", body) } }),
      );
      setSaved({ candidate: candidate!, encounterId: encounter.id });
      reset();
    } catch (error) {
      const split = errorsFor(t, error, {
        external_ref: "newRef",
        display_name: "newName",
        candidate_id: "ref",
        touchpoint_id: "touchpoint",
        occurred_at: "occurredAt",
        score: "score",
        note: "note",
      });
      if (error instanceof ApiError && error.code === "already_exists" && mode === "new") {
        split.fields.newRef = t("log.ref_taken", { ref: newRef.trim() });
      }
      setErrors(split.fields);
      setFormError(split.form);
    }
  };

  const scoreError = errors.score;
  return (
    <form class="log-form" onSubmit={submit} noValidate aria-describedby={formError ? "log-form-error" : undefined}>
      {saved && (
        <div class="notice success" role="status">
          <p>
            {t("log.saved", { ref: saved.candidate.external_ref ?? `#${saved.candidate.id}` })}{" "}
            <a href={`/app/candidates/${saved.candidate.id}`}>{t("log.see_journey")}</a>
          </p>
        </div>
      )}
      {formError && (
        <p class="notice error" role="alert" id="log-form-error">
          {formError}
        </p>
      )}
      <fieldset>
        <legend>{t("log.candidate")}</legend>
        <div class="radio-row">
          <label class="checkbox">
            <input type="radio" name="mode" value="existing" checked={mode === "existing"} onChange={() => setMode("existing")} />
            {t("log.existing")}
          </label>
          <label class="checkbox">
            <input type="radio" name="mode" value="new" checked={mode === "new"} onChange={() => setMode("new")} />
            {t("log.new")}
          </label>
        </div>
        {mode === "existing" ? (
          <>
            <div class="lookup">
              <Field id="log-ref" label={t("log.search")} hint={t("log.ref_hint")} error={errors.ref || undefined}>
                {(control) => (
                  <SearchInput
                    {...control}
                    value={ref}
                    onInput={(e) => {
                      setRef(e.currentTarget.value);
                      setFound(null);
                      setMatches(null);
                      setLookup("idle");
                    }}
                    onKeyDown={(e) => {
                      // Enter in the search box finds; it does not record.
                      if (e.key === "Enter") {
                        e.preventDefault();
                        void find();
                      }
                    }}
                  />
                )}
              </Field>
              <button type="button" class="secondary" onClick={() => void find()} disabled={lookup === "busy"}>
                {t("log.find")}
              </button>
              <p class="lookup-result" role="status">
                {found
                  ? t("log.found", { ref: found.external_ref ?? "", name: found.display_name ?? "–", stage: t(`stage.${found.stage}`) })
                  : matches && matches.rows.length > 1
                    ? t(matches.more ? "log.matches_more" : "log.matches_n", { n: matches.rows.length })
                    : ""}
                {lookup === "missing" && (
                  <button
                    type="button"
                    class="link"
                    onClick={() => {
                      setNewRef(ref.trim());
                      setMode("new");
                    }}
                  >
                    {t("log.create_instead", { ref: ref.trim() })}
                  </button>
                )}
              </p>
            </div>
            {matches && matches.rows.length > 1 && (
              <fieldset class="matches">
                <legend>{t("log.matches")}</legend>
                {matches.rows.map((c) => (
                  <label class="checkbox">
                    <input
                      type="radio"
                      name="candidate"
                      value={String(c.id)}
                      checked={found?.id === c.id}
                      onChange={() => {
                        setFound(c);
                        setErrors((e) => ({ ...e, ref: "" }));
                      }}
                    />
                    <span>
                      <strong>{c.external_ref}</strong> · {c.display_name ?? "–"} · {t(`stage.${c.stage}`)}
                    </span>
                  </label>
                ))}
                {matches.more && <p class="hint">{t("log.refine")}</p>}
              </fieldset>
            )}
          </>
        ) : (
          <div class="form-grid">
            <Field id="log-new-ref" label={t("candidates.ref")} error={errors.newRef}>
              {(control) => <input {...control} type="text" maxLength={200} autoComplete="off" value={newRef} onInput={(e) => setNewRef(e.currentTarget.value)} />}
            </Field>
            <Field id="log-new-name" label={t("candidate.name")} hint={t("form.optional")} error={errors.newName}>
              {(control) => <input {...control} type="text" maxLength={200} autoComplete="off" value={newName} onInput={(e) => setNewName(e.currentTarget.value)} />}
            </Field>
          </div>
        )}
      </fieldset>

      <Field id="log-touchpoint" label={t("log.touchpoint")} error={errors.touchpoint}>
        {(control) => (
          <select {...control} value={touchpointId} onChange={(e) => setTouchpointId(e.currentTarget.value)}>
            <option value="">{t("log.pick_touchpoint")}</option>
            {byKind.map((group) => (
              <optgroup label={t(`kind.${group.kind}`)}>
                {group.rows.map((tp) => (
                  <option value={String(tp.id)}>
                    {tp.name} ({t(`stage.${tp.stage}`)})
                  </option>
                ))}
              </optgroup>
            ))}
          </select>
        )}
      </Field>

      <Field id="log-time" label={t("log.time")} hint={t("log.time_hint")} error={errors.occurredAt}>
        {(control) => <input {...control} type="datetime-local" value={occurredAt} onInput={(e) => setOccurredAt(e.currentTarget.value)} />}
      </Field>

      <fieldset class="score" aria-describedby={`log-score-hint${scoreError ? " log-score-error" : ""}`}>
        <legend>{t("log.score")}</legend>
        <p class="hint" id="log-score-hint">
          {t("log.score_hint")}
        </p>
        <div class="score-choices">
          <label class="score-choice none">
            <input
              type="radio"
              name="score"
              value=""
              checked={score === ""}
              onChange={() => setScore("")}
              {...(scoreError ? { "aria-invalid": "true" } : {})}
            />
            <span>{t("log.no_score")}</span>
          </label>
          {SCORES.map((n) => (
            <label class="score-choice">
              <input
                type="radio"
                name="score"
                value={String(n)}
                checked={score === String(n)}
                onChange={() => setScore(String(n))}
                {...(scoreError ? { "aria-invalid": "true" } : {})}
              />
              <span>{fmt.count(n)}</span>
            </label>
          ))}
        </div>
        {scoreError && (
          <p class="field-error" id="log-score-error">
            {scoreError}
          </p>
        )}
      </fieldset>

      <Field id="log-note" label={t("log.note")} hint={t("log.note_hint")} error={errors.note}>
        {(control) => <textarea {...control} rows={4} maxLength={4000} value={note} onInput={(e) => setNote(e.currentTarget.value)} />}
      </Field>

      <div class="form-actions">
        <button type="submit" disabled={submitting} aria-disabled={submitting ? "true" : "false"}>
          {submitting ? t("log.recording") : t("log.record")}
        </button>
      </div>
    </form>
  );
}
