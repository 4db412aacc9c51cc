// The report window of a view, kept in its URL (?days=90 or ?from=&to=) so
// that a view can be bookmarked and shared. Windows are whole UTC days,
// `to` exclusive, as the API takes them.
import { addDays, daysBetween, isoDay } from "./format";
import { setQuery, useLocation } from "./router";

export const PRESETS = [30, 90, 365] as const;
export const DEFAULT_DAYS = 90;

export interface ReportWindow {
  from: string;
  /** The day after the window. */
  to: string;
  /** The preset, when the window is "the last N days" (today included). */
  days: number | null;
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

export function lastDays(days: number, today = isoDay(new Date())): ReportWindow {
  const to = addDays(today, 1);
  return { from: addDays(to, -days), to, days };
}

export function useReportWindow(): ReportWindow {
  const { query } = useLocation();
  const from = query.get("from");
  const to = query.get("to");
  if (from && to && DAY.test(from) && DAY.test(to) && from < to) return { from, to, days: null };
  const days = Number(query.get("days"));
  return lastDays(PRESETS.includes(days as (typeof PRESETS)[number]) ? days : DEFAULT_DAYS);
}

export function setReportWindow(window: ReportWindow): void {
  if (window.days !== null) setQuery({ days: String(window.days), from: null, to: null });
  else setQuery({ days: null, from: window.from, to: window.to });
}

export type Bucket = "day" | "week" | "month";

/** A bucket that gives a readable chart: days for a month or two, weeks
 * up to a year and a half, months beyond. */
export function defaultBucket(window: ReportWindow): Bucket {
  const days = daysBetween(window.from, window.to);
  if (days <= 62) return "day";
  if (days <= 190) return "week";
  return "month";
}
