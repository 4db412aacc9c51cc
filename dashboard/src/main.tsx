// The dashboard's shell: the session (sign-in form, or the views the role
// may see), the header with the navigation, the language and sign-out, and
// the routes under /app.
import { render, type ComponentChildren } from "preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError, currentSession, signIn, signOut, whenSessionEnds, type Session } from "./api";
import { forgetCatalog } from "./catalog";
import { makeFormat, type Locale } from "./format";
import { initialLocale, rememberLocale, translator, type MessageKey, type Translate } from "./i18n";
import { interceptLinks, match, useLocation } from "./router";
import { AppContext, capabilities, useApp, type App, type Capabilities } from "./state";
import { errorText } from "./ui";
import { Alerts } from "./views/alerts";
import { Candidates, Journey } from "./views/candidates";
import { Keys } from "./views/keys";
import { LogEncounter } from "./views/log";
import { Overview } from "./views/overview";
import { Settings } from "./views/settings";
import { Surveys } from "./views/surveys";
import { TouchpointPage, Touchpoints } from "./views/touchpoints";

interface Route {
  pattern: string;
  /** The nav entry it belongs to. */
  nav: NavEntry["path"];
  allowed: (can: Capabilities) => boolean;
  view: (params: Record<string, string>) => ComponentChildren;
}

interface NavEntry {
  path: "/app" | "/app/touchpoints" | "/app/candidates" | "/app/log" | "/app/alerts" | "/app/surveys" | "/app/keys" | "/app/settings";
  label: MessageKey;
  allowed: (can: Capabilities) => boolean;
}

const everyone = () => true;
const NAV: NavEntry[] = [
  { path: "/app", label: "nav.overview", allowed: everyone },
  { path: "/app/touchpoints", label: "nav.touchpoints", allowed: everyone },
  { path: "/app/candidates", label: "nav.candidates", allowed: everyone },
  { path: "/app/log", label: "nav.log", allowed: (can) => can.record },
  { path: "/app/alerts", label: "nav.alerts", allowed: everyone },
  { path: "/app/surveys", label: "nav.surveys", allowed: everyone },
  { path: "/app/keys", label: "nav.keys", allowed: (can) => can.admin },
  { path: "/app/settings", label: "nav.settings", allowed: (can) => can.admin },
];

const id = (params: Record<string, string>) => Number(params.id);
const ROUTES: Route[] = [
  { pattern: "/app", nav: "/app", allowed: everyone, view: () => <Overview /> },
  { pattern: "/app/touchpoints", nav: "/app/touchpoints", allowed: everyone, view: () => <Touchpoints /> },
  { pattern: "/app/touchpoints/:id", nav: "/app/touchpoints", allowed: everyone, view: (p) => <TouchpointPage id={id(p)} /> },
  { pattern: "/app/candidates", nav: "/app/candidates", allowed: everyone, view: () => <Candidates /> },
  { pattern: "/app/candidates/:id", nav: "/app/candidates", allowed: everyone, view: (p) => <Journey id={id(p)} /> },
  { pattern: "/app/log", nav: "/app/log", allowed: (can) => can.record, view: () => <LogEncounter /> },
  { pattern: "/app/alerts", nav: "/app/alerts", allowed: everyone, view: () => <Alerts /> },
  { pattern: "/app/surveys", nav: "/app/surveys", allowed: everyone, view: () => <Surveys /> },
  { pattern: "/app/keys", nav: "/app/keys", allowed: (can) => can.admin, view: () => <Keys /> },
  { pattern: "/app/settings", nav: "/app/settings", allowed: (can) => can.admin, view: () => <Settings /> },
];

type SignedOutReason = "ended" | "signed_out" | null;
type State = { kind: "starting" } | { kind: "signed_out"; reason: SignedOutReason } | { kind: "signed_in"; session: Session };

function Root() {
  const [locale, setLocale] = useState<Locale>(initialLocale);
  const [state, setState] = useState<State>({ kind: "starting" });
  const [bootError, setBootError] = useState<ApiError>();
  const t = useMemo(() => translator(locale), [locale]);
  const fmt = useMemo(() => makeFormat(locale), [locale]);

  useEffect(() => {
    document.documentElement.lang = locale;
  }, [locale]);
  useEffect(() => {
    whenSessionEnds(() => {
      forgetCatalog();
      setState((s) => (s.kind === "signed_in" ? { kind: "signed_out", reason: "ended" } : s));
    });
    currentSession().then(
      (session) => setState(session ? { kind: "signed_in", session } : { kind: "signed_out", reason: null }),
      (error: ApiError) => setBootError(error),
    );
  }, []);

  const chooseLocale = (next: Locale) => {
    rememberLocale(next);
    setLocale(next);
  };

  if (state.kind === "starting") {
    return (
      <main id="main" class="starting">
        {bootError ? (
          <p class="notice error" role="alert">
            {errorText(t, bootError)}
          </p>
        ) : (
          <p class="muted">{t("common.loading")}</p>
        )}
      </main>
    );
  }
  if (state.kind === "signed_out") {
    return (
      <SignIn
        t={t}
        locale={locale}
        onLocale={chooseLocale}
        reason={state.reason}
        onSignedIn={(session) => setState({ kind: "signed_in", session })}
      />
    );
  }
  const session = state.session;
  const app: App = {
    session,
    updateOrganization: (changes) =>
      setState({ kind: "signed_in", session: { ...session, organization: { ...session.organization, ...changes } } }),
    locale,
    t,
    fmt,
    can: capabilities(session.key.role),
  };
  return (
    <AppContext.Provider value={app}>
      <Shell
        onLocale={chooseLocale}
        onSignOut={async () => {
          await signOut();
          forgetCatalog();
          setState({ kind: "signed_out", reason: "signed_out" });
        }}
      />
    </AppContext.Provider>
  );
}

function LanguagePicker(props: { t: Translate; locale: Locale; onLocale: (locale: Locale) => void }) {
  return (
    <div class="language">
      <label for="language">{props.t("header.language")}</label>
      <select id="language" value={props.locale} onChange={(e) => props.onLocale(e.currentTarget.value as Locale)}>
        <option value="en" lang="en">
          English
        </option>
        <option value="vi" lang="vi">
          Tiếng Việt
        </option>
      </select>
    </div>
  );
}

function Shell(props: { onLocale: (locale: Locale) => void; onSignOut: () => Promise<void> }) {
  const { t, can, session, locale } = useApp();
  const { path } = useLocation();
  const [signOutError, setSignOutError] = useState<ApiError>();
  const found = ROUTES.map((route) => ({ route, params: match(route.pattern, path) })).find((m) => m.params !== null);
  const section = found?.route.nav;
  return (
    <>
      <a class="skip-link" href="#main">
        {t("header.skip")}
      </a>
      <header class="site-header">
        <div class="brand">
          <span class="org">{session.organization.name}</span>
          <span class="product">touchpoint-tracker</span>
        </div>
        <nav aria-label={t("header.nav")}>
          <ul>
            {NAV.filter((entry) => entry.allowed(can)).map((entry) => (
              <li>
                <a href={entry.path} aria-current={path === entry.path ? "page" : section === entry.path ? "true" : undefined}>
                  {t(entry.label)}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="account">
          <LanguagePicker t={t} locale={locale} onLocale={props.onLocale} />
          <span class="who">
            {session.key.name} · {t(`role.${session.key.role}`)}
          </span>
          <button
            type="button"
            class="secondary small"
            onClick={() => props.onSignOut().catch((error: ApiError) => setSignOutError(error))}
          >
            {t("header.sign_out")}
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {signOutError && (
          <p class="notice error" role="alert">
            {errorText(t, signOutError)}
          </p>
        )}
        {!found ? (
          <Missing title={t("missing.title")} body={t("missing.body")} />
        ) : !found.route.allowed(can) ? (
          <Missing title={t("forbidden.title")} body={t("forbidden.body")} />
        ) : (
          <div key={path}>{found.route.view(found.params!)}</div>
        )}
      </main>
    </>
  );
}

function Missing(props: { title: string; body: string }) {
  const { t } = useApp();
  useEffect(() => {
    document.title = `${props.title} · touchpoint-tracker`;
  }, [props.title]);
  return (
    <>
      <h1>{props.title}</h1>
      <p>{props.body}</p>
      <p>
        <a href="/app">{t("nav.overview")}</a>
      </p>
    </>
  );
}

/** The sign-in form: the key stays in this input and nowhere else, and is
 * cleared once sent. The page to return to is the URL, left as it was. */
function SignIn(props: {
  t: Translate;
  locale: Locale;
  onLocale: (locale: Locale) => void;
  reason: SignedOutReason;
  onSignedIn: (session: Session) => void;
}) {
  const { t } = props;
  const input = useRef<HTMLInputElement>(null);
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    document.title = `${t("signin.title")} · touchpoint-tracker`;
  }, [t]);
  const submit = async (event: Event) => {
    event.preventDefault();
    const field = input.current;
    if (!field || busy) return;
    const key = field.value.trim();
    if (!key) {
      setError(t("signin.empty"));
      field.focus();
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      const session = await signIn(key);
      field.value = "";
      props.onSignedIn(session);
    } catch (caught) {
      field.value = "";
      const failure = caught instanceof ApiError ? caught : new ApiError(0, "network", String(caught));
      setError(
        failure.status === 401
          ? t("signin.refused")
          : failure.status === 429
            ? t("signin.too_many")
            : errorText(t, failure),
      );
      field.focus();
    } finally {
      setBusy(false);
    }
  };
  const reason =
    props.reason === "ended" ? t("signin.ended") : props.reason === "signed_out" ? t("signin.signed_out") : null;
  return (
    <>
      <header class="site-header simple">
        <div class="brand">
          <span class="product">touchpoint-tracker</span>
        </div>
        <div class="account">
          <LanguagePicker t={t} locale={props.locale} onLocale={props.onLocale} />
        </div>
      </header>
      <main id="main" class="signin">
        <h1>{t("signin.title")}</h1>
        {reason && (
          <p class="notice" role="status" id="signin-reason">
            {reason}
          </p>
        )}
        <form onSubmit={submit} noValidate class="signin-form">
          <div class={`field${error ? " invalid" : ""}`}>
            <label for="api-key">{t("signin.key")}</label>
            <p class="hint" id="api-key-hint">
              {t("signin.key_hint")}
            </p>
            <input
              id="api-key"
              ref={input}
              type="password"
              name="api-key"
              autoComplete="off"
              spellcheck={false}
              aria-describedby={`api-key-hint${error ? " api-key-error" : ""}`}
              {...(error ? { "aria-invalid": "true" } : {})}
            />
            {error && (
              <p class="field-error" id="api-key-error" role="alert">
                {error}
              </p>
            )}
          </div>
          <button type="submit" disabled={busy}>
            {t("signin.submit")}
          </button>
        </form>
      </main>
    </>
  );
}

interceptLinks();
const mount = document.getElementById("app");
if (mount) render(<Root />, mount);
