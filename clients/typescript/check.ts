// The main operations through the TypeScript client: types from
// openapi-typescript (generated/schema.ts, made from openapi/openapi.json by
// scripts/clients.sh) and openapi-fetch. scripts/clients.sh type-checks this
// file (tsc --noEmit); it is not run. The @ts-expect-error lines prove that
// the types refuse what the service refuses.
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/schema.js";

type Schemas = components["schemas"];
type ErrorBody = Schemas["ErrorBody"];

function fail(what: string, error: ErrorBody): never {
  const { code, message, field } = error.error;
  throw new Error(`${what}: ${code} ${message}${field ? ` (${field})` : ""}`);
}

export async function tour(baseUrl: string, token: string): Promise<void> {
  const api = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });

  // Create a touchpoint (admin).
  const touchpoint = await api.POST("/api/v1/touchpoints", {
    body: { name: "Interviewer no-show", kind: "unexpected", channel: "interview", stage: "interview" },
  });
  if (touchpoint.error) fail("create touchpoint", touchpoint.error);
  const kind: Schemas["Kind"] = touchpoint.data.kind;
  const touchpointId: number = touchpoint.data.id;

  await api.POST("/api/v1/touchpoints", {
    // @ts-expect-error: "paid" is no kind.
    body: { name: "Paid ad", kind: "paid", channel: "job_board", stage: "awareness" },
  });

  // Create a candidate (admin, recruiter), retry-safe.
  const candidate = await api.POST("/api/v1/candidates", {
    params: { header: { "Idempotency-Key": "2f1c7c9e-candidate-ATS-1042" } },
    body: { external_ref: "ATS-1042", display_name: "Nguyen Thi Lan", stage: "interview" },
  });
  if (candidate.error) fail("create candidate", candidate.error);
  const stage: Schemas["Stage"] = candidate.data.stage;

  // Create an encounter with a score.
  const encounter = await api.POST("/api/v1/encounters", {
    body: {
      candidate_id: candidate.data.id,
      touchpoint_id: touchpointId,
      occurred_at: "2026-11-09T14:00:00Z",
      score: 3,
      source: "recruiter_observation",
      note: "Waited 40 minutes, nobody came",
    },
  });
  if (encounter.error) {
    // A 422 names the field at fault, e.g. "score".
    const code: Schemas["ErrorCode"] = encounter.error.error.code;
    fail(`create encounter (${code})`, encounter.error);
  }
  const score: number | null | undefined = encounter.data.score;

  await api.POST("/api/v1/encounters", {
    // @ts-expect-error: candidate_id is required.
    body: { touchpoint_id: touchpointId, occurred_at: "2026-11-09T14:00:00Z" },
  });

  // The perception trend: monthly, one series per kind.
  const trend = await api.GET("/api/v1/reports/perception-trend", {
    params: { query: { from: "2026-01-01", to: "2027-01-01", bucket: "month", group_by: "kind" } },
  });
  if (trend.error) fail("perception trend", trend.error);
  for (const series of trend.data.series) {
    for (const point of series.points) {
      const cnps: number | null | undefined = point.cnps; // null when nothing was scored
      console.log(series.group, point.bucket_start, point.encounters, cnps ?? "-");
    }
  }

  await api.GET("/api/v1/reports/perception-trend", {
    // @ts-expect-error: "year" is no bucket.
    params: { query: { from: "2026-01-01", to: "2027-01-01", bucket: "year" } },
  });

  // The touchpoint impact: the touchpoints that hurt perception most first.
  const impact = await api.GET("/api/v1/reports/touchpoint-impact", {
    params: { query: { from: "2026-11-01", to: "2026-12-01" } },
  });
  if (impact.error) fail("touchpoint impact", impact.error);
  const worst: Schemas["TouchpointImpact"] | undefined = impact.data.touchpoints[0];
  const shift: number | null | undefined = worst?.mean_attributed_shift;

  // The perception gap: recruiters' mean score minus candidates' own, per kind.
  const gap = await api.GET("/api/v1/reports/perception-gap", {
    params: { query: { from: "2026-01-01", to: "2027-01-01", group_by: "kind" } },
  });
  if (gap.error) fail("perception gap", gap.error);
  for (const group of gap.data.groups as Schemas["PerceptionGapGroup"][]) {
    const significant: boolean | null | undefined = group.gap_significant; // null when suppressed or too few scores
    console.log(group.group, group.mean_score_gap, group.mean_score_gap_low, group.mean_score_gap_high, significant);
  }

  // The incremental export: NDJSON, one ExportRecord per line; the typed
  // client cannot parse a stream, so it is read as text and split.
  const exported = await api.GET("/api/v1/exports/encounters", {
    params: { query: { format: "ndjson" } },
    parseAs: "text",
  });
  if (exported.error) fail("export", exported.error);
  let cursor: string | undefined;
  for (const line of exported.data.split("\n").filter((l) => l !== "")) {
    const record = JSON.parse(line) as Schemas["ExportRecord"];
    switch (record.type) {
      case "encounter":
        console.log("upsert", record.encounter.id, record.encounter.score ?? "-");
        break;
      case "deleted":
        console.log("delete", record.encounter_id);
        break;
      case "end":
        cursor = record.next_cursor;
        break;
    }
  }
  const next = await api.GET("/api/v1/exports/encounters", {
    params: { query: { ...(cursor === undefined ? {} : { cursor }), format: "csv" } },
    parseAs: "text",
  });
  if (next.error) fail("export", next.error);
  const headerCursor: string | null = next.response.headers.get("x-next-cursor");

  console.log(kind, stage, score, shift, headerCursor);
}
