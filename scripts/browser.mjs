// What the repository's browser checks share (docs-screenshot.mjs,
// survey-browser.mjs, dashboard-browser.mjs): Debian's chromium, driven by
// playwright-core (pinned in clients/typescript; npm ci there first),
// launched headless without any traffic of its own (no updates, sync,
// QUIC or background requests), so that every request a check sees is
// one the page made.
import { createRequire } from "node:module";

const require = createRequire(new URL("../clients/typescript/package.json", import.meta.url));
const { chromium } = require("playwright-core");

export const CHROMIUM = "/usr/bin/chromium";

export function launchChromium() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}
