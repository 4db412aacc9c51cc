// What every view reads: the session, the language and its formatters, and
// what the signed-in role may do.
import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { Role, Session } from "./api";
import type { Format, Locale } from "./format";
import type { Translate } from "./i18n";

export interface Capabilities {
  /** Record candidates and encounters (recruiter, admin). */
  record: boolean;
  /** Acknowledge and resolve alerts (recruiter, admin). */
  handleAlerts: boolean;
  /** The catalog, keys, settings, alert rules, webhooks (admin). */
  admin: boolean;
}

export function capabilities(role: Role): Capabilities {
  return { record: role !== "reporter", handleAlerts: role !== "reporter", admin: role === "admin" };
}

export interface App {
  session: Session;
  /** After the organization's settings change (name, min_group_size). */
  updateOrganization(changes: Partial<Session["organization"]>): void;
  locale: Locale;
  t: Translate;
  fmt: Format;
  can: Capabilities;
}

export const AppContext = createContext<App | null>(null);

export function useApp(): App {
  const app = useContext(AppContext);
  if (!app) throw new Error("useApp outside the signed-in app");
  return app;
}
