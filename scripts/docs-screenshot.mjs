// Opens the service's API reference (Swagger UI at /docs) in Debian's
// chromium, checks that the operations on touchpoints, candidates,
// encounters and reports are listed, and saves a screenshot.
//
//   node scripts/docs-screenshot.mjs http://127.0.0.1:8080 target/clients/docs.png
//
// Exits non-zero when the page does not render or an operation group is
// missing. playwright-core (pinned) comes from clients/typescript
// (npm ci there first); the browser is /usr/bin/chromium
// (apt-get install chromium). Only requests to the service's own host are
// let through, so the page cannot reach out (e.g. to Swagger's validator).
import { launchChromium } from "./browser.mjs";


const [base, out] = process.argv.slice(2);
if (!base || !out) {
  console.error("usage: node scripts/docs-screenshot.mjs BASE_URL OUT.png");
  process.exit(2);
}
const docs = new URL("/docs", base);

// The operation groups a reader must find, by path prefix.
const REQUIRED = {
  touchpoints: "/api/v1/touchpoints",
  candidates: "/api/v1/candidates",
  encounters: "/api/v1/encounters",
  reports: "/api/v1/reports/",
};

const browser = await launchChromium();
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const blocked = new Set();
  await page.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.host === docs.host || url.protocol === "data:") return route.continue();
    blocked.add(url.origin);
    return route.abort();
  });
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));

  const response = await page.goto(docs.href, { waitUntil: "load", timeout: 30_000 });
  if (!response || !response.ok()) throw new Error(`GET ${docs.href} answered ${response?.status()}`);
  // Swagger UI renders the operations from /openapi.json after load.
  await page.waitForSelector(".swagger-ui .opblock", { timeout: 30_000 });

  const operations = await page.$$eval(".swagger-ui .opblock", (blocks) =>
    blocks.map((block) => {
      const method = block.querySelector(".opblock-summary-method")?.textContent?.trim() ?? "";
      const pathElement = block.querySelector(".opblock-summary-path");
      const path = pathElement?.getAttribute("data-path") ?? pathElement?.textContent?.trim() ?? "";
      return `${method} ${path}`;
    }),
  );
  const missing = Object.entries(REQUIRED)
    .filter(([, prefix]) => !operations.some((op) => op.split(" ")[1]?.startsWith(prefix)))
    .map(([group]) => group);

  await page.screenshot({ path: out, fullPage: true });
  console.log(`docs-screenshot: ${operations.length} operations listed at ${docs.href}; screenshot ${out}`);
  if (blocked.size > 0) console.log(`docs-screenshot: blocked requests to ${[...blocked].join(", ")}`);
  if (errors.length > 0) console.log(`docs-screenshot: page errors: ${errors.join("; ")}`);
  if (missing.length > 0) {
    console.error(`docs-screenshot: no operations listed for ${missing.join(", ")}; listed: ${operations.join(", ")}`);
    failed = true;
  }
} catch (error) {
  console.error(`docs-screenshot: ${error.message}`);
  failed = true;
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
