// Pieces every view is made of: loading data, a page with its heading,
// errors, tables and paged lists, actions and their outcome, figures with
// their intervals and small-group suppression, forms wired to the API's
// errors, the report window picker.
import type { ComponentChildren, JSX } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "./api";
import { addDays, daysBetween } from "./format";
import type { MessageKey } from "./i18n";
import { useApp } from "./state";
import { PRESETS, type ReportWindow, setReportWindow, lastDays } from "./window";

// --- data ------------------------------------------------------------------
export interface Loaded<T> {
  data: T | undefined;
  error: ApiError | undefined;
  loading: boolean;
  reload(): void;
}

/** Runs `load` when `deps` change; an answer that arrives after a newer
 * request started is dropped. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: ApiError; loading: boolean }>({ loading: true });
  const generation = useRef(0);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const mine = ++generation.current;
    setState((previous) => ({ data: previous.data, loading: true }));
    load().then(
      (data) => mine === generation.current && setState({ data, loading: false }),
      (error: unknown) =>
        mine === generation.current &&
        setState({ error: error instanceof ApiError ? error : new ApiError(0, "internal", String(error)), loading: false }),
    );
    // `load` is a new closure each render; `deps` say when it changed.
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  return { data: state.data, error: state.error, loading: state.loading, reload };
}

// --- page ------------------------------------------------------------------
/** A view: its <h1> (focused after a navigation, so a screen reader
 * announces the new page) and the document's title. */
export function Page(props: { title: string; intro?: ComponentChildren; actions?: ComponentChildren; children: ComponentChildren }) {
  const { session } = useApp();
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${props.title} · ${session.organization.name} · touchpoint-tracker`;
  }, [props.title, session.organization.name]);
  useEffect(() => {
    // Not on the first page of a visit: the skip link comes first there.
    if (pageViews++ > 0) heading.current?.focus({ preventScroll: false });
  }, []);
  return (
    <>
      <div class="page-head">
        <h1 tabIndex={-1} ref={heading}>
          {props.title}
        </h1>
        {props.actions && <div class="page-actions">{props.actions}</div>}
      </div>
      {props.intro && <p class="intro">{props.intro}</p>}
      {props.children}
    </>
  );
}
let pageViews = 0;

/** A part of a page with its own data: aria-busy while it loads. */
export function Section(props: {
  title: string;
  id?: string;
  busy?: boolean;
  level?: 2 | 3;
  actions?: ComponentChildren;
  children: ComponentChildren;
}) {
  const Heading = props.level === 3 ? "h3" : "h2";
  const id = props.id ?? `s-${slug(props.title)}`;
  return (
    <section class="card" aria-labelledby={id} aria-busy={props.busy ? "true" : "false"} id={`${id}-section`}>
      <div class="card-head">
        <Heading id={id}>{props.title}</Heading>
        {props.actions}
      </div>
      {props.children}
    </section>
  );
}

export function slug(text: string): string {
  return text
    .normalize("NFD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "");
}

export function Loading() {
  const { t } = useApp();
  // aria-busy: the browser check (and assistive technology) can tell a
  // view still loading from one that has rendered.
  return (
    <p class="muted" aria-busy="true">
      {t("common.loading")}
    </p>
  );
}

/** What went wrong, in the reader's language, with the API's own words. */
export function errorText(t: ReturnType<typeof useApp>["t"], error: ApiError): string {
  const known: Record<string, MessageKey> = {
    network: "error.network",
    forbidden: "error.forbidden",
    not_found: "error.not_found",
    rate_limited: "error.rate_limited",
    unavailable: "error.unavailable",
    internal: "error.internal",
    cross_site_request: "error.cross_site",
  };
  const key = known[error.code];
  if (key) return t(key);
  return error.message;
}

export function ErrorNote(props: { error: ApiError; retry?: () => void }) {
  const { t } = useApp();
  return (
    <div class="notice error" role="alert">
      <p>{errorText(t, props.error)}</p>
      {props.retry && (
        <button type="button" class="secondary" onClick={props.retry}>
          {t("common.retry")}
        </button>
      )}
    </div>
  );
}

/** Renders `children(data)` once loaded, the error otherwise. */
export function Show<T>(props: { loaded: Loaded<T>; children: (data: T) => ComponentChildren }) {
  const { data, error, reload } = props.loaded;
  if (error) return <ErrorNote error={error} retry={reload} />;
  // While reloading, the previous data stays (the section says it is busy).
  if (data === undefined) return <Loading />;
  return <>{props.children(data)}</>;
}

/** The first pages of a list once loaded (see `firstPages`): `none` when
 * it is empty, else `children(rows)` and "Show more" while more follow. */
export function ShowPages<T>(props: {
  loaded: Loaded<{ rows: T[]; more: boolean }>;
  none: string;
  onMore: () => void;
  children: (rows: T[]) => ComponentChildren;
}) {
  return (
    <Show loaded={props.loaded}>
      {({ rows, more }) =>
        rows.length === 0 ? (
          <p class="muted">{props.none}</p>
        ) : (
          <>
            {props.children(rows)}
            {more && <MoreButton onClick={props.onMore} />}
          </>
        )
      }
    </Show>
  );
}

/** "Show more": the next page of a list. */
export function MoreButton(props: { onClick: () => void; disabled?: boolean }) {
  const { t } = useApp();
  return (
    <button type="button" class="secondary" disabled={props.disabled} onClick={props.onClick}>
      {t("common.more")}
    </button>
  );
}

// --- tables ----------------------------------------------------------------
/** A column's heading: its text, or `num(text)` for a column of figures
 * (aligned right); `false` leaves the column out (one a role does not see). */
export type Column = string | { label: string; num: true } | false;
export const num = (label: string): Column => ({ label, num: true });

/** A table with its column headings and `children` as its body's rows,
 * scrolling sideways on a narrow screen (unless `scroll` is false). */
export function Table(props: { columns: Column[]; class?: string; caption?: string; scroll?: false; children: ComponentChildren }) {
  const table = (
    <table class={props.class}>
      {props.caption && <caption class="visually-hidden">{props.caption}</caption>}
      <thead>
        <tr>
          {props.columns.map((column) =>
            column === false ? null : typeof column === "string" ? (
              <th scope="col">{column}</th>
            ) : (
              <th scope="col" class="num">
                {column.label}
              </th>
            ),
          )}
        </tr>
      </thead>
      <tbody>{props.children}</tbody>
    </table>
  );
  return props.scroll === false ? table : <div class="table-scroll">{table}</div>;
}

// --- actions ---------------------------------------------------------------
/** What an action said when it went through, announced. */
export function StatusNote(props: { message: string | undefined; class?: string }) {
  if (!props.message) return null;
  return (
    <p class={props.class ?? "notice success"} role="status">
      {props.message}
    </p>
  );
}

/** Actions on a list's rows: `run(what)` clears the last outcome, runs
 * `what` and keeps the API's refusal, if any, as `error` (shown with
 * <FormError>); `what` may `setMessage` (shown with <StatusNote>). */
export function useActions() {
  const { t } = useApp();
  const [message, setMessage] = useState<string>();
  const [error, setError] = useState<string>();
  const run = async (what: () => Promise<unknown>) => {
    setError(undefined);
    setMessage(undefined);
    try {
      await what();
    } catch (caught) {
      setError(errorsFor(t, caught, {}).form);
    }
  };
  return { message, setMessage, error, run };
}

/** A button acting on one row of a table: named for the row ("Delete:
 * <name>"), its label alone being the same on every row. `expanded` and
 * `controls` for one that shows or hides a part of the page. */
export function RowButton(props: {
  label: string;
  row: string;
  danger?: boolean;
  expanded?: boolean;
  controls?: string | undefined;
  onClick: () => unknown;
}) {
  return (
    <button
      type="button"
      class={props.danger ? "danger small" : "secondary small"}
      aria-label={`${props.label}: ${props.row}`}
      aria-expanded={props.expanded === undefined ? undefined : props.expanded ? "true" : "false"}
      aria-controls={props.controls}
      onClick={() => void props.onClick()}
    >
      {props.label}
    </button>
  );
}

/** A button that shows or hides a part of the page (a form, say). */
export function ToggleButton(props: { open: boolean; onToggle: (open: boolean) => void; class?: string; children: ComponentChildren }) {
  return (
    <button type="button" class={props.class} aria-expanded={props.open ? "true" : "false"} onClick={() => props.onToggle(!props.open)}>
      {props.children}
    </button>
  );
}

// --- figures ---------------------------------------------------------------
/** "fewer than N answers": what a suppressed figure says, never 0 or blank. */
export function Suppressed(props: { unit?: "answers" | "invitations" | "attributions" }) {
  const { t, session } = useApp();
  const key: MessageKey =
    props.unit === "invitations"
      ? "figure.fewer_invitations"
      : props.unit === "attributions"
        ? "figure.fewer_attributions"
        : "figure.fewer_answers";
  return <span class="suppressed">{t(key, { n: session.organization.min_group_size })}</span>;
}

/** A cNPS (or another signed figure) with its 95% interval. */
export function Interval(props: {
  value: number | null | undefined;
  low?: number | null;
  high?: number | null;
  suppressed?: boolean;
  digits?: number;
  signed?: boolean;
  /** What a null figure means when not suppressed. */
  none?: string;
}) {
  const { t, fmt } = useApp();
  if (props.suppressed) return <Suppressed />;
  if (props.value === null || props.value === undefined) return <span class="muted">{props.none ?? t("figure.no_scores")}</span>;
  const digits = props.digits ?? 1;
  const show = (n: number) => (props.signed === false ? fmt.number(n, digits) : fmt.signed(n, digits));
  return (
    <span class="with-interval">
      <span class="value">{show(props.value)}</span>
      {props.low !== null && props.low !== undefined && props.high !== null && props.high !== undefined && (
        <span class="interval">{t("figure.interval", { low: show(props.low), high: show(props.high) })}</span>
      )}
    </span>
  );
}

/** A change marker: "▲ +2" / "▼ −4" / "0". */
export function Shift(props: { value: number | null | undefined; digits?: number }) {
  const { t, fmt } = useApp();
  if (props.value === null || props.value === undefined) return <span class="muted">–</span>;
  const digits = props.digits ?? 0;
  const direction = props.value > 0 ? "up" : props.value < 0 ? "down" : "flat";
  const label = direction === "up" ? t("shift.up") : direction === "down" ? t("shift.down") : t("shift.flat");
  return (
    <span class={`shift shift-${direction}`}>
      <span aria-hidden="true">{direction === "up" ? "▲ " : direction === "down" ? "▼ " : ""}</span>
      <span class="visually-hidden">{label} </span>
      {direction === "flat" ? `±${fmt.number(0, digits)}` : fmt.signed(props.value, digits)}
    </span>
  );
}

/** Significant or not, said in words (not by colour alone). */
export function Significance(props: { significant: boolean | null | undefined; p?: number | null }) {
  const { t, fmt } = useApp();
  if (props.significant === null || props.significant === undefined) return <span class="muted">–</span>;
  const p = props.p === null || props.p === undefined ? "" : ` (p ${props.p < 0.001 ? "" : "= "}${fmt.p(props.p)})`;
  return props.significant ? (
    <span class="badge significant">
      {t("figure.significant")}
      {p}
    </span>
  ) : (
    <span class="badge">
      {t("figure.not_significant")}
      {p}
    </span>
  );
}

// --- forms -----------------------------------------------------------------
/** A field's errors by name, from the API's `field` (or set locally). */
export type FieldErrors = Record<string, string>;

/** What a field's control gets from <Field>, to spread. */
export type FieldControl = {
  id: string;
  "aria-describedby"?: string;
  "aria-invalid"?: "true";
};

/** Label, control and error message, wired with aria-describedby and
 * aria-invalid. `control` gets the props to spread. */
export function Field(props: {
  id: string;
  label: string;
  hint?: string;
  error?: string | undefined;
  children: (control: FieldControl) => JSX.Element;
}) {
  const hintId = props.hint ? `${props.id}-hint` : undefined;
  const errorId = props.error ? `${props.id}-error` : undefined;
  const describedBy = [hintId, errorId].filter(Boolean).join(" ") || undefined;
  return (
    <div class={`field${props.error ? " invalid" : ""}`}>
      <label for={props.id}>{props.label}</label>
      {props.hint && (
        <p class="hint" id={hintId}>
          {props.hint}
        </p>
      )}
      {props.children({
        id: props.id,
        ...(describedBy ? { "aria-describedby": describedBy } : {}),
        ...(props.error ? { "aria-invalid": "true" as const } : {}),
      })}
      {props.error && (
        <p class="field-error" id={errorId}>
          {props.error}
        </p>
      )}
    </div>
  );
}

/** A form-level error (one naming no field of the form), announced. */
export function FormError(props: { message: string | undefined }) {
  if (!props.message) return null;
  return (
    <p class="notice error" role="alert">
      {props.message}
    </p>
  );
}

/** A form's errors and its submission. `submit(event, send, check)`:
 * ignored while one runs; `check` (when given) refuses the fields locally
 * first; otherwise the errors are cleared, `send` runs, and its refusal is
 * split over the form's fields (`fields`: the API's field names to the
 * form's) and a message for the form. */
export function useForm(fields: Record<string, string>) {
  const { t } = useApp();
  const [errors, setErrors] = useState<FieldErrors>({});
  const [formError, setFormError] = useState<string>();
  const [saving, setSaving] = useState(false);
  const submit = async (event: Event, send: () => Promise<void>, check?: () => FieldErrors) => {
    event.preventDefault();
    if (saving) return;
    const local = check?.() ?? {};
    if (Object.keys(local).length > 0) {
      setErrors(local);
      return;
    }
    setSaving(true);
    setErrors({});
    setFormError(undefined);
    try {
      await send();
    } catch (error) {
      const split = errorsFor(t, error, fields);
      setErrors(split.fields);
      setFormError(split.form);
    } finally {
      setSaving(false);
    }
  };
  return { errors, formError, setFormError, saving, submit };
}

/** "Required" for each of `values` (by field name) that is blank: a
 * `check` for `useForm`. */
export function required(t: ReturnType<typeof useApp>["t"], values: Record<string, string>): FieldErrors {
  const errors: FieldErrors = {};
  for (const [field, value] of Object.entries(values)) if (!value.trim()) errors[field] = t("form.required");
  return errors;
}

/** A form's submit button (disabled while it saves) and, with `onCancel`,
 * its cancel button. */
export function FormActions(props: { saving: boolean; label: string; onCancel?: () => void }) {
  const { t } = useApp();
  return (
    <div class="form-actions">
      <button type="submit" disabled={props.saving}>
        {props.label}
      </button>
      {props.onCancel && (
        <button type="button" class="secondary" onClick={props.onCancel}>
          {t("common.cancel")}
        </button>
      )}
    </div>
  );
}

/** A checkbox for each of `options`, `value` those checked. */
export function CheckboxGrid<V extends string>(props: {
  options: readonly V[];
  value: readonly V[];
  labelOf: (option: V) => ComponentChildren;
  onChange: (value: V[]) => void;
}) {
  return (
    <div class="checkbox-grid">
      {props.options.map((option) => (
        <label class="checkbox">
          <input
            type="checkbox"
            checked={props.value.includes(option)}
            onChange={(e) => props.onChange(e.currentTarget.checked ? [...props.value, option] : props.value.filter((v) => v !== option))}
          />
          {props.labelOf(option)}
        </label>
      ))}
    </div>
  );
}

/** Splits an API refusal into field errors (for the fields the form has)
 * and a message for the rest. */
export function errorsFor(
  t: ReturnType<typeof useApp>["t"],
  error: unknown,
  fields: Record<string, string>,
): { fields: FieldErrors; form?: string } {
  if (!(error instanceof ApiError)) return { fields: {}, form: String(error) };
  const mapped: FieldErrors = {};
  const rest: string[] = [];
  const place = (field: string | null, message: string) => {
    const name = field ? fields[field.replace(/^\[\d+\]\./, "")] : undefined;
    if (name) mapped[name] = mapped[name] ? `${mapped[name]} ${message}` : message;
    else rest.push(message);
  };
  if (error.items.length > 0) error.items.forEach((item) => place(item.field, item.message));
  else if (error.field || error.status === 422 || error.status === 409) place(error.field, errorText(t, error));
  else rest.push(errorText(t, error));
  return rest.length > 0 ? { fields: mapped, form: rest.join(" ") } : { fields: mapped };
}

// --- the report window -----------------------------------------------------
export function WindowPicker(props: { window: ReportWindow }) {
  const { t, fmt } = useApp();
  const { window } = props;
  const [custom, setCustom] = useState(window.days === null);
  const [from, setFrom] = useState(window.from);
  const [through, setThrough] = useState(addDays(window.to, -1));
  const [error, setError] = useState<string>();
  useEffect(() => {
    setFrom(window.from);
    setThrough(addDays(window.to, -1));
  }, [window.from, window.to]);
  const apply = (event: Event) => {
    event.preventDefault();
    if (!from || !through || through < from) {
      setError(t("window.invalid"));
      return;
    }
    setError(undefined);
    setReportWindow({ from, to: addDays(through, 1), days: null });
  };
  return (
    <div class="window-picker">
      <div class="presets" role="group" aria-label={t("window.label")}>
        {PRESETS.map((days) => (
          <button
            type="button"
            class="chip"
            aria-pressed={window.days === days ? "true" : "false"}
            onClick={() => {
              setCustom(false);
              setReportWindow(lastDays(days));
            }}
          >
            {t("window.last_days", { n: days })}
          </button>
        ))}
        <button type="button" class="chip" aria-pressed={custom ? "true" : "false"} aria-expanded={custom ? "true" : "false"} onClick={() => setCustom(!custom)}>
          {t("window.custom")}
        </button>
      </div>
      {custom && (
        <form class="custom-window" onSubmit={apply} noValidate>
          <Field id="window-from" label={t("window.from")} error={error}>
            {(control) => <input type="date" {...control} value={from} onInput={(e) => setFrom(e.currentTarget.value)} />}
          </Field>
          <Field id="window-through" label={t("window.through")}>
            {(control) => <input type="date" {...control} value={through} onInput={(e) => setThrough(e.currentTarget.value)} />}
          </Field>
          <button type="submit">{t("window.apply")}</button>
        </form>
      )}
      <p class="window-shown">
        {t("window.shown", {
          from: fmt.day(window.from),
          through: fmt.day(addDays(window.to, -1)),
          n: daysBetween(window.from, window.to),
        })}
      </p>
    </div>
  );
}

/** A select of labelled values. */
export function Select<V extends string>(props: {
  id: string;
  label: string;
  value: V;
  options: readonly V[];
  labelOf: (value: V) => string;
  onChange: (value: V) => void;
  error?: string;
}) {
  return (
    <Field id={props.id} label={props.label} error={props.error}>
      {(control) => (
        <select {...control} value={props.value} onChange={(e) => props.onChange(e.currentTarget.value as V)}>
          {props.options.map((option) => (
            <option value={option}>{props.labelOf(option)}</option>
          ))}
        </select>
      )}
    </Field>
  );
}
