// Numbers and dates for the chosen locale, through Intl only.
export type Locale = "en" | "vi";

export interface Format {
  /** 1234 -> "1,234" (en) / "1.234" (vi). */
  count(n: number): string;
  /** A figure with `digits` decimals. */
  number(n: number, digits?: number): string;
  /** With its sign: "+12.3", "−4.0", "0.0". */
  signed(n: number, digits?: number): string;
  /** 0.42 -> "42%". */
  percent(ratio: number): string;
  /** A p-value: "0.012", or "< 0.001". */
  p(value: number): string;
  /** A report day ("2026-11-02", a UTC day). */
  day(isoDate: string): string;
  /** A report month ("2026-11-01" -> "Nov 2026"). */
  month(isoDate: string): string;
  /** A moment, in the reader's time zone. */
  dateTime(iso: string): string;
  /** A short axis label for a UTC day given in seconds since the epoch. */
  axisDay(seconds: number, withYear: boolean): string;
}

export function makeFormat(locale: Locale): Format {
  const tag = locale === "vi" ? "vi-VN" : "en-GB";
  const numbers = new Map<number, Intl.NumberFormat>();
  const signedNumbers = new Map<number, Intl.NumberFormat>();
  const fixed = (digits: number) => {
    let f = numbers.get(digits);
    if (!f) numbers.set(digits, (f = new Intl.NumberFormat(tag, { minimumFractionDigits: digits, maximumFractionDigits: digits })));
    return f;
  };
  const signedFixed = (digits: number) => {
    let f = signedNumbers.get(digits);
    if (!f) {
      f = new Intl.NumberFormat(tag, {
        minimumFractionDigits: digits,
        maximumFractionDigits: digits,
        signDisplay: "exceptZero",
      });
      signedNumbers.set(digits, f);
    }
    return f;
  };
  const count = new Intl.NumberFormat(tag, { maximumFractionDigits: 0 });
  const percent = new Intl.NumberFormat(tag, { style: "percent", maximumFractionDigits: 0 });
  const day = new Intl.DateTimeFormat(tag, { timeZone: "UTC", day: "numeric", month: "short", year: "numeric" });
  const month = new Intl.DateTimeFormat(tag, { timeZone: "UTC", month: "short", year: "numeric" });
  const axisShort = new Intl.DateTimeFormat(tag, { timeZone: "UTC", day: "numeric", month: "short" });
  const axisLong = new Intl.DateTimeFormat(tag, { timeZone: "UTC", month: "short", year: "numeric" });
  const dateTime = new Intl.DateTimeFormat(tag, { dateStyle: "medium", timeStyle: "short" });
  const utc = (isoDate: string) => new Date(`${isoDate}T00:00:00Z`);
  return {
    count: (n) => count.format(n),
    number: (n, digits = 1) => fixed(digits).format(n),
    // U+2212 minus reads better than a hyphen next to figures.
    signed: (n, digits = 1) => signedFixed(digits).format(n).replace("-", "\u2212"),
    percent: (ratio) => percent.format(ratio),
    p: (value) => (value < 0.001 ? `< ${fixed(3).format(0.001)}` : fixed(3).format(value)),
    day: (isoDate) => day.format(utc(isoDate)),
    month: (isoDate) => month.format(utc(isoDate)),
    dateTime: (iso) => dateTime.format(new Date(iso)),
    axisDay: (seconds, withYear) => (withYear ? axisLong : axisShort).format(new Date(seconds * 1000)),
  };
}

/** The UTC day of a Date, as the reports' windows name days. */
export function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/** `isoDate` moved by `days` (UTC). */
export function addDays(isoDate: string, days: number): string {
  const date = new Date(`${isoDate}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + days);
  return isoDay(date);
}

/** Whole days from `from` to `to`. */
export function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000);
}
