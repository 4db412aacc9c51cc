// The candidate's side of a pulse survey, in Debian's chromium: answers the
// survey with the keyboard only, from the link in the e-mail, checks every
// public survey page with axe-core (WCAG 2.0/2.1 A and AA) in Vietnamese and
// English, and saves phone-sized screenshots of the survey page.
//
//   node scripts/survey-browser.mjs PLAN.json RESULT.json
//
// PLAN.json is written by `scripts/survey_e2e.py setup` (run by
// scripts/survey-e2e.sh): the service's base URL, per locale the link to
// answer and the score and comment to give, the revoked links, the
// screenshots' paths. RESULT.json receives what was answered, for
// `survey_e2e.py verify`.
//
// Two browser contexts, both 390x844 at device scale 1:
//   - the candidate's, with the page's own Content-Security-Policy in force:
//     any console error, uncaught exception, CSP violation, failed or
//     off-host request there fails the run;
//   - axe's, with bypassCSP, since injecting axe is an inline script that
//     the page's `script-src 'self'` rightly refuses. A page answered only
//     to a POST (the thank-you page) is replayed there from the bytes the
//     candidate's context received, so the token is answered once.
// Any axe violation of impact serious or critical fails the run; the
// others are printed. Exits non-zero on any failure, listing them all.
// playwright-core and axe-core (pinned) come from clients/typescript
// (npm ci there first); the browser is /usr/bin/chromium.
import { createRequire } from "node:module";
import { launchChromium } from "./browser.mjs";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

const require = createRequire(new URL("../clients/typescript/package.json", import.meta.url));
const AXE_PATH = require.resolve("axe-core/axe.min.js");
const AXE_VERSION = require("axe-core/package.json").version;
const AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];
const FAILING_IMPACTS = new Set(["serious", "critical"]);
const LOCALES = ["vi", "en"];
const VIEWPORT = { width: 390, height: 844 };

const [planPath, resultPath] = process.argv.slice(2);
if (!planPath || !resultPath) {
  console.error("usage: node scripts/survey-browser.mjs PLAN.json RESULT.json");
  process.exit(2);
}
const plan = JSON.parse(readFileSync(planPath, "utf8"));
const base = new URL(plan.base);

const failures = [];
const fail = (message) => {
  failures.push(message);
  console.error(`  FAIL ${message}`);
};
const log = (message) => console.log(`survey-browser: ${message}`);

const browser = await launchChromium();

// Only the service's own host is reachable: a survey page has no business
// elsewhere, and a request elsewhere is a finding, not a fetch.
async function onlyService(context, blocked) {
  await context.route(
    (url) => url.host !== base.host && url.protocol !== "data:",
    (route) => {
      blocked.push(route.request().url());
      return route.abort();
    },
  );
}

// --- the candidate's context: the page's CSP in force, every error counted --
const candidate = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1 });
const candidateBlocked = [];
await onlyService(candidate, candidateBlocked);
// CSP violations also reach the console, but the event names the directive.
await candidate.addInitScript(() => {
  document.addEventListener("securitypolicyviolation", (event) => {
    console.error(`securitypolicyviolation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
  });
});
const page = await candidate.newPage();
let step = "start";
// The status a page is expected to answer with: Chromium logs a document's
// 4xx as "Failed to load resource", which is then no error of the page.
let expectedDocument = null;
page.on("console", (message) => {
  if (message.type() !== "error") return;
  const text = message.text();
  const status = /^Failed to load resource: the server responded with a status of (\d+)/.exec(text);
  if (
    status &&
    expectedDocument &&
    Number(status[1]) === expectedDocument.status &&
    message.location().url === expectedDocument.url
  ) {
    return;
  }
  fail(`${step}: console error: ${text} (${message.location().url})`);
});
page.on("pageerror", (error) => fail(`${step}: uncaught exception: ${error.message}`));
page.on("requestfailed", (request) => {
  if (new URL(request.url()).host === base.host) {
    fail(`${step}: request failed: ${request.method()} ${request.url()} (${request.failure()?.errorText})`);
  }
});
page.on("response", (response) => {
  const request = response.request();
  if (!request.isNavigationRequest() && response.status() >= 400) {
    fail(`${step}: ${request.method()} ${response.url()} answered ${response.status()}`);
  }
});

// --- axe's context: CSP bypassed so that axe can be injected ---------------
const auditing = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1, bypassCSP: true });
await onlyService(auditing, []);
const axePage = await auditing.newPage();
const audits = [];

// Loads a page in the candidate's context; checks its status, CSP header,
// language and the landmarks every survey page has.
async function visit(label, url, { status, lang, method = "GET", body = null }) {
  step = label;
  expectedDocument = { url, status };
  if (method === "POST") {
    await postOnce(page, url, body);
  }
  // networkidle: survey.js's "opened" beacon is done before the next page.
  const response = await page.goto(url, { waitUntil: "networkidle", timeout: 15_000 });
  if (!response) throw new Error(`${label}: no response for ${url}`);
  if (response.status() !== status) fail(`${label}: ${method} ${url} answered ${response.status()}, expected ${status}`);
  checkHeaders(label, response);
  const shape = await pageShape(page);
  checkCommon(label, shape, lang);
  return { response, shape };
}

// Turns the next navigation to `url` into the form's POST: the same request a
// browser sends, without clicking through a page (the 422 page's input is one
// a browser's own validation would not let through).
async function postOnce(target, url, body) {
  await target.route(
    (u) => u.href === url,
    (route) =>
      route.continue({
        method: "POST",
        postData: body,
        headers: { ...route.request().headers(), "content-type": "application/x-www-form-urlencoded" },
      }),
    { times: 1 },
  );
}

function checkHeaders(label, response) {
  const csp = response.headers()["content-security-policy"] ?? "";
  for (const directive of ["default-src 'none'", "script-src 'self'", "form-action 'self'", "frame-ancestors 'none'"]) {
    if (!csp.includes(directive)) fail(`${label}: Content-Security-Policy lacks "${directive}" (got "${csp}")`);
  }
}

function checkCommon(label, shape, lang) {
  if (lang && shape.lang !== lang) fail(`${label}: <html lang="${shape.lang}">, expected "${lang}"`);
  if (!shape.main) fail(`${label}: no <main>`);
  if (!shape.h1) fail(`${label}: no <h1> with text`);
}

// What the contract says a survey page is made of, read from the DOM.
function pageShape(target) {
  return target.evaluate(() => {
    const form = document.querySelector("form");
    const comment = document.querySelector("textarea[name=comment]");
    const labelled = (element) => [...(element.labels ?? [])].some((label) => label.textContent.trim() !== "");
    return {
      lang: document.documentElement.getAttribute("lang"),
      h1: document.querySelector("h1")?.textContent.trim() ?? "",
      main: document.querySelector("main") !== null,
      form: form && { method: form.getAttribute("method"), action: form.getAttribute("action") },
      legend: document.querySelector("form fieldset legend")?.textContent.trim() ?? "",
      radios: [...document.querySelectorAll("input[type=radio][name=score]")].map((radio) => ({
        value: radio.value,
        checked: radio.checked,
        labelled: labelled(radio),
      })),
      comment: comment && { labelled: labelled(comment) },
      submit: document.querySelector("form button[type=submit]") !== null,
      stylesheet: [...document.styleSheets].some(
        (sheet) => sheet.href && new URL(sheet.href).pathname === "/s/assets/survey.css",
      ),
    };
  });
}

function checkForm(label, shape, token, checkedScore) {
  const path = new URL(token).pathname;
  if (!shape.form || shape.form.method?.toLowerCase() !== "post" || shape.form.action !== path) {
    fail(`${label}: expected <form method="post" action="${path}">, got ${JSON.stringify(shape.form)}`);
  }
  if (!shape.legend) fail(`${label}: no <fieldset> with a <legend> (the question)`);
  const values = shape.radios.map((radio) => radio.value).join(",");
  if (values !== "0,1,2,3,4,5,6,7,8,9,10") fail(`${label}: score radios are [${values}], expected 0..10`);
  const unlabelled = shape.radios.filter((radio) => !radio.labelled).map((radio) => radio.value);
  if (unlabelled.length > 0) fail(`${label}: score radios without a <label>: ${unlabelled.join(", ")}`);
  if (!shape.comment?.labelled) fail(`${label}: no <textarea name="comment"> with a <label>`);
  if (!shape.submit) fail(`${label}: no <button type="submit"> in the form`);
  if (!shape.stylesheet) fail(`${label}: /s/assets/survey.css is not applied`);
  const checked = shape.radios.filter((radio) => radio.checked).map((radio) => Number(radio.value));
  const expected = checkedScore === null ? [] : [checkedScore];
  if (checked.join() !== expected.join()) {
    fail(`${label}: checked score(s) [${checked}], expected [${expected}]`);
  }
}

// Runs axe on what axePage shows. `replay`: serve this response instead of
// asking the service (for pages reached only by a POST).
async function audit(label, url, { status, replay = null, method = "GET", body = null }) {
  if (replay) {
    await axePage.route((u) => u.href === url, (route) => route.fulfill(replay), { times: 1 });
  } else if (method === "POST") {
    await postOnce(axePage, url, body);
  }
  const response = await axePage.goto(url, { waitUntil: "load", timeout: 15_000 });
  if (response?.status() !== status) fail(`${label} (axe's context): answered ${response?.status()}, expected ${status}`);
  await axePage.addScriptTag({ path: AXE_PATH });
  const results = await axePage.evaluate(
    (tags) => window.axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] }),
    AXE_TAGS,
  );
  const serious = results.violations.filter((v) => FAILING_IMPACTS.has(v.impact));
  const minor = results.violations.filter((v) => !FAILING_IMPACTS.has(v.impact));
  audits.push({
    page: label,
    url,
    violations: results.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target) })),
    needs_review: results.incomplete.map((v) => v.id),
  });
  const summary = `${results.passes.length} rules passed, ${results.violations.length} violated, ${results.incomplete.length} to review`;
  log(`axe ${label}: ${summary}${results.incomplete.length ? ` (${results.incomplete.map((v) => v.id).join(", ")})` : ""}`);
  for (const violation of [...serious, ...minor]) {
    const lines = [`${violation.id} (${violation.impact}): ${violation.help} <${violation.helpUrl}>`];
    for (const node of violation.nodes.slice(0, 5)) {
      lines.push(`      at ${node.target.join(" ")}: ${node.html.slice(0, 200)}`);
      lines.push(`      ${node.failureSummary?.replaceAll("\n", "\n      ")}`);
    }
    if (FAILING_IMPACTS.has(violation.impact)) fail(`${label}: axe ${lines.join("\n")}`);
    else log(`axe ${label}: note ${lines.join("\n")}`);
  }
}

// Presses Tab until `selector` has the focus (at most `limit` times).
async function tabTo(selector, limit, label) {
  for (let presses = 1; presses <= limit; presses++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return presses;
  }
  throw new Error(`${label}: ${limit} Tab presses did not reach ${selector}`);
}

// WCAG 2.4.7, which axe cannot see: the focused control, or its label when
// the control itself is transparent (styled radios), draws a focus ring.
async function checkFocusShown(label) {
  const shown = await page.evaluate(() => {
    const ring = (element) => {
      const style = getComputedStyle(element);
      return (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0) || style.boxShadow !== "none";
    };
    const focused = document.activeElement;
    const visible = getComputedStyle(focused).opacity !== "0";
    return {
      element: focused.name ? `${focused.tagName.toLowerCase()}[name=${focused.name}]` : focused.tagName.toLowerCase(),
      ok: (visible && ring(focused)) || [...(focused.labels ?? [])].some(ring),
    };
  });
  if (!shown.ok) fail(`${label}: ${shown.element} has the keyboard focus but neither it nor its label shows it`);
}

// The candidate's answer, keyboard only.
async function answerWithKeyboard(locale, answer) {
  const label = `${locale} keyboard answer`;
  const { shape } = await visit(`${locale} survey page (${answer.url})`, answer.url, { status: 200, lang: locale });
  checkForm(`${locale} survey page`, shape, answer.survey_url, answer.start_score ?? null);
  mkdirSync(dirname(plan.screenshots[locale]), { recursive: true });
  await page.screenshot({ path: plan.screenshots[locale], fullPage: true });
  step = label;

  const tabs = await tabTo("input[type=radio][name=score]", 40, label);
  await checkFocusShown(label);
  const focused = Number(await page.evaluate(() => document.activeElement.value));
  // A group with a checked radio takes the focus on it; an unchecked group on its first.
  const expectedFocus = answer.start_score ?? 0;
  if (focused !== expectedFocus) fail(`${label}: Tab entered the choices on ${focused}, expected ${expectedFocus}`);
  const moves = answer.score - focused;
  if (moves === 0) await page.keyboard.press("Space");
  for (let i = 0; i < Math.abs(moves); i++) await page.keyboard.press(moves > 0 ? "ArrowRight" : "ArrowLeft");
  const chosen = await page.evaluate(() => ({
    focused: document.activeElement?.matches("input[name=score]") ? document.activeElement.value : null,
    checked: document.querySelector("input[name=score]:checked")?.value ?? null,
  }));
  if (chosen.checked !== String(answer.score) || chosen.focused !== String(answer.score)) {
    fail(`${label}: after the arrow keys ${JSON.stringify(chosen)}, expected ${answer.score} checked and focused`);
  }

  await checkFocusShown(label);
  await tabTo("textarea[name=comment]", 3, label);
  await checkFocusShown(label);
  await page.keyboard.type(answer.comment);
  await tabTo("button[type=submit]", 3, label);
  await checkFocusShown(label);
  const tokenPath = new URL(answer.survey_url).pathname;
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === "POST" && new URL(r.url()).pathname === tokenPath, {
      timeout: 15_000,
    }),
    page.keyboard.press("Enter"),
  ]);
  const sent = new URLSearchParams(response.request().postData() ?? "");
  if (sent.get("score") !== String(answer.score) || sent.get("comment") !== answer.comment) {
    fail(`${label}: the form sent score=${sent.get("score")} comment=${JSON.stringify(sent.get("comment"))}`);
  }
  if (response.status() !== 200) fail(`${label}: POST answered ${response.status()}, expected 200`);
  // A navigation with survey.js or without; if the script answers with a
  // fetch instead, the page it leaves is what the candidate sees.
  await page.waitForLoadState("load");
  await page.waitForFunction(() => !document.querySelector("input[name=score]"), null, { timeout: 15_000 });
  const navigated = response.request().isNavigationRequest();
  if (navigated) checkHeaders(`${locale} thank-you page`, response);
  const thanks = await pageShape(page);
  checkCommon(`${locale} thank-you page`, thanks, locale);
  log(`${locale}: ${tabs} Tab(s) to the choices, ${Math.abs(moves)} arrow key(s) to ${answer.score}, comment typed, Enter:`
    + ` ${response.status()} "${thanks.h1}"`);
  const replay = navigated
    ? { status: response.status(), contentType: response.headers()["content-type"], body: await response.body() }
    : { status: 200, contentType: "text/html; charset=utf-8", body: await page.content() };
  return { score: answer.score, comment: answer.comment, thank_you: { status: response.status(), h1: thanks.h1 }, replay };
}

const result = { browser: true, axe_version: AXE_VERSION, answers: {}, audits };
try {
  for (const locale of LOCALES) {
    const answer = plan.answer[locale];
    await page.setExtraHTTPHeaders({ "Accept-Language": locale });
    await axePage.setExtraHTTPHeaders({ "Accept-Language": locale });

    // Before answering: the form, its 422 (no score chosen), the answer.
    await audit(`${locale} survey page`, answer.survey_url, { status: 200 });
    const invalid = { status: 422, lang: locale, method: "POST", body: "comment=" };
    const { shape } = await visit(`${locale} 422 page (no score)`, answer.survey_url, invalid);
    checkForm(`${locale} 422 page`, shape, answer.survey_url, null);
    await audit(`${locale} 422 page (no score)`, answer.survey_url, invalid);
    const { replay, ...answered } = await answerWithKeyboard(locale, answer);
    result.answers[locale] = answered;
    await audit(`${locale} thank-you page`, answer.survey_url, { status: 200, replay });

    // After: the same link again, a revoked link, an unknown token.
    const pages = [
      [`${locale} 409 page (answered)`, answer.survey_url, 409, locale],
      [`${locale} 410 page (revoked)`, plan.revoked[locale], 410, locale],
      // An unknown token has no invitation to take a language from.
      [`404 page (unknown token, Accept-Language ${locale})`, plan.unknown_url, 404, null],
    ];
    for (const [label, url, status, lang] of pages) {
      const { shape: errorShape } = await visit(label, url, { status, lang });
      if (lang === null) log(`${label}: <html lang="${errorShape.lang}">, "${errorShape.h1}"`);
      if (errorShape.radios.length > 0) fail(`${label}: shows the score choices`);
      await audit(label, url, { status });
    }
  }
  if (candidateBlocked.length > 0) fail(`requests off the service's host: ${candidateBlocked.join(", ")}`);
} catch (error) {
  fail(`${step}: ${error.stack ?? error.message}`);
} finally {
  await browser.close();
}

writeFileSync(resultPath, JSON.stringify(result, null, 2));
const audited = audits.length;
const violations = audits.reduce((n, a) => n + a.violations.length, 0);
if (failures.length > 0) {
  console.error(`survey-browser: ${failures.length} failure(s):\n- ${failures.join("\n- ")}`);
  process.exit(1);
}
log(`all green: ${audited} pages audited with axe-core ${AXE_VERSION} (${AXE_TAGS.join(", ")}),`
  + ` ${violations} minor or moderate violation(s); screenshots ${Object.values(plan.screenshots).join(", ")}`);
