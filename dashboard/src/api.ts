// The API as the dashboard uses it: the generated types with openapi-fetch,
// the session cookie (same-origin credentials, never a stored key), one
// error type for every refusal, and the rule that any 401 ends the session.
import createClient from "openapi-fetch";
import type { components, paths } from "../generated/schema";

export type Schemas = components["schemas"];
export type Role = Schemas["Role"];
export type Kind = Schemas["Kind"];
export type Channel = Schemas["Channel"];
export type Stage = Schemas["Stage"];
export type Touchpoint = Schemas["Touchpoint"];
export type Candidate = Schemas["Candidate"];

/** What `GET/POST /api/v1/session` answer. */
export type Session = Schemas["DashboardSessionInfo"];

/** A refusal of the API (`{"error": {"code", "message", "field"}}`), or a
 * failure to reach it (`code` "network"). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field: string | null = null,
    /** A batch's refused items (`invalid_items`), by index. */
    readonly items: { index: number; field: string | null; message: string }[] = [],
  ) {
    super(message);
  }
}

type ErrorShape = {
  error?: { code?: string; message?: string; field?: string | null };
  items?: { index: number; error: { message: string; field?: string | null } }[];
};

function toApiError(status: number, body: unknown): ApiError {
  const shape = (body ?? {}) as ErrorShape;
  const error = shape.error;
  return new ApiError(
    status,
    error?.code ?? `http_${status}`,
    error?.message ?? `HTTP ${status}`,
    error?.field ?? null,
    (shape.items ?? []).map((item) => ({
      index: item.index,
      field: item.error.field ?? null,
      message: item.error.message,
    })),
  );
}

// Who hears that the session ended (the app shows the sign-in form).
let onSessionEnded: () => void = () => {};
export function whenSessionEnds(listener: () => void): void {
  onSessionEnded = listener;
}

// The cookie goes with every call; the key itself never leaves the sign-in form.
export const api = createClient<paths>({ baseUrl: "", credentials: "same-origin" });
api.use({
  onResponse({ response }) {
    if (response.status === 401) onSessionEnded();
    return undefined;
  },
});

/** The data of a call, or its ApiError. */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await call;
  } catch (cause) {
    throw new ApiError(0, "network", cause instanceof Error ? cause.message : String(cause));
  }
  if (!result.response.ok) throw toApiError(result.response.status, result.error);
  return result.data as T;
}

/** One page of a list: `page(cursor)` answers the page after `cursor`. */
type PageOf<T> = (cursor: string | undefined) => Promise<{ items: T[]; next_cursor?: string | null }>;

/** The first `pages` pages of a list, following `next_cursor`, and whether
 * more follow (a list shown with "Show more"). */
export async function firstPages<T>(pages: number, page: PageOf<T>): Promise<{ rows: T[]; more: boolean }> {
  const rows: T[] = [];
  let cursor: string | undefined;
  let more = false;
  for (let i = 0; i < pages; i++) {
    const answer = await page(cursor);
    rows.push(...answer.items);
    more = !!answer.next_cursor;
    if (!answer.next_cursor) break;
    cursor = answer.next_cursor;
  }
  return { rows, more };
}

/** Every page of a list (for catalogs of at most a few hundred rows:
 * touchpoints, rules, endpoints). */
export async function allPages<T>(page: PageOf<T>): Promise<T[]> {
  return (await firstPages(100, page)).rows;
}

// --- the session (not in the generated client: cookie endpoints) -----------
async function sessionCall(method: string, headers: Record<string, string> = {}): Promise<Response> {
  try {
    return await fetch("/api/v1/session", { method, headers, credentials: "same-origin" });
  } catch (cause) {
    throw new ApiError(0, "network", cause instanceof Error ? cause.message : String(cause));
  }
}

/** The live session, or null when there is none. */
export async function currentSession(): Promise<Session | null> {
  const response = await sessionCall("GET");
  if (response.status === 401) return null;
  if (!response.ok) throw toApiError(response.status, await response.json().catch(() => null));
  return (await response.json()) as Session;
}

/** Signs in with an API key: the service answers with the cookie set. */
export async function signIn(key: string): Promise<Session> {
  const response = await sessionCall("POST", { Authorization: `Bearer ${key}` });
  if (!response.ok) throw toApiError(response.status, await response.json().catch(() => null));
  return (await response.json()) as Session;
}

export async function signOut(): Promise<void> {
  const response = await sessionCall("DELETE");
  if (!response.ok && response.status !== 401) {
    throw toApiError(response.status, await response.json().catch(() => null));
  }
}

/** A random UUID (v4) for an Idempotency-Key. `crypto.randomUUID` exists
 * only in secure contexts; an intranet over plain http is not one. */
export function newIdempotencyKey(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
