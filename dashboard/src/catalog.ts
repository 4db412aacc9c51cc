// The touchpoint catalog, read once per session and shared by the views
// that need names (alerts, survey rates, the log form); edits refresh it.
import { allPages, api, unwrap, type Touchpoint } from "./api";

let cache: Promise<Touchpoint[]> | null = null;

export function loadCatalog(): Promise<Touchpoint[]> {
  if (!cache) {
    cache = allPages((cursor) =>
      unwrap(
        api.GET("/api/v1/touchpoints", {
          params: { query: { include_archived: true, limit: 500, ...(cursor ? { cursor } : {}) } },
        }),
      ),
    );
    cache.catch(() => (cache = null));
  }
  return cache;
}

export function forgetCatalog(): void {
  cache = null;
}
