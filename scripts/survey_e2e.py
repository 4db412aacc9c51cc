"""The API and e-mail half of scripts/survey-e2e.sh (standard library only).

    TT_API=http://127.0.0.1:PORT TT_TOKEN=ADMIN_KEY \\
        python3 scripts/survey_e2e.py setup --mail MAIL_DIR --plan PLAN.json
    node scripts/survey-browser.mjs PLAN.json RESULT.json     # or: answer --plan --result
    TT_API=... TT_TOKEN=... python3 scripts/survey_e2e.py verify --plan PLAN.json --result RESULT.json

setup: a touchpoint and four candidates with e-mail addresses (one each: the
cool-down refuses a second invitation to one candidate), an invitation in
`vi` and one in `en` sent by e-mail, and one of each revoked (for the 410
page). Waits at most 30 s for the two e-mails in MAIL_DIR (scripts/smtp_sink.py
writes them), checks their language, links and that no candidate name is in
them, and writes the browser's plan: the links taken from the e-mails, the
score and comment to give, where to put the screenshots.

answer: what the browser would do, as a plain form POST, for a machine
without chromium (scripts/survey-e2e.sh uses it only outside CI).

verify: each answer is an encounter of its candidate's journey, from source
`candidate_survey` with the score and comment given; the invitations say
`answered` (and the revoked ones `revoked`); the survey-responses report
counts the answers; and the public POST answers 409, 410 and 404 for an
answered, a revoked and an unknown link.
"""

import argparse
import datetime as dt
import email
import email.policy
import html.parser
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

API = os.environ.get("TT_API", "")
TOKEN = os.environ.get("TT_TOKEN", "")
SENDER = "surveys@example.test"
UNKNOWN_TOKEN_PATH = "/s/unknown-token-xxxxxxxxxxxxxxxxxxxx"

# One candidate per invitation. The names must never reach an e-mail; the
# addresses are not made of the names, so the name check cannot match them.
CANDIDATES = {
    "vi": {"external_ref": "SURVEY-E2E-VI", "display_name": "Trần Thị Bích Ngọc", "email": "candidate-vi@example.test"},
    "en": {"external_ref": "SURVEY-E2E-EN", "display_name": "Jonathan Appleseed", "email": "candidate-en@example.test"},
    "vi-revoked": {
        "external_ref": "SURVEY-E2E-VI-R",
        "display_name": "Phạm Quốc Huy",
        "email": "revoked-vi@example.test",
    },
    "en-revoked": {
        "external_ref": "SURVEY-E2E-EN-R",
        "display_name": "Margaret Hollister",
        "email": "revoked-en@example.test",
    },
}
# What the browser answers. vi starts from the e-mail's ?score=9 link and
# moves to 7 with the arrow keys; en starts from the plain link (nothing
# checked). The vi comment has diacritics, so UTF-8 is checked end to end.
ANSWERS = {
    "vi": {"start_score": 9, "score": 7, "comment": "Người phỏng vấn rất chu đáo, nhưng tôi phải chờ lâu."},
    "en": {"start_score": None, "score": 4, "comment": "The interviewer was kind; the building was hard to find."},
}
# Letters only Vietnamese uses among the Latin scripts: đ, ơ, ư, ă and the
# precomposed tone marks of Latin Extended Additional (U+1EA0..U+1EF9).
VIETNAMESE = re.compile("[đĐơƠưƯăĂ\u1ea0-\u1ef9]")


def die(message: str) -> None:
    sys.exit(f"survey_e2e.py: {message}")


def call(method: str, path: str, body=None, expect=(200,), auth=True):
    """One request; dies unless the status is in `expect`. Returns (status, parsed body)."""
    data = None
    headers = {"Accept": "application/json"}
    if auth:
        headers["Authorization"] = f"Bearer {TOKEN}"
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(API + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    if status not in expect:
        die(f"{method} {path} answered {status}, expected {' or '.join(map(str, expect))}: {raw[:600]!r}")
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def post_form(url: str, fields: dict) -> int:
    """The public survey form's POST, as a browser without scripts sends it."""
    data = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


class Links(html.parser.HTMLParser):
    """Every href of an HTML part."""

    def __init__(self):
        super().__init__()
        self.hrefs = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.hrefs += [value for name, value in attrs if name == "href" and value]


# --- setup ---------------------------------------------------------------------


def setup(args) -> None:
    _, touchpoint = call(
        "POST",
        "/api/v1/touchpoints",
        {"name": "Onsite interview", "kind": "employer_created", "channel": "interview", "stage": "interview"},
        expect=(201,),
    )
    invitations = {}
    for key, candidate in CANDIDATES.items():
        _, created = call("POST", "/api/v1/candidates", {**candidate, "stage": "interview"}, expect=(201,))
        locale = key.split("-")[0]
        revoked = key.endswith("-revoked")
        # The revoked ones are not sent: only the two answered ones reach the sink.
        _, answer = call(
            "POST",
            "/api/v1/survey-invitations",
            {
                "candidate_id": created["id"],
                "touchpoint_id": touchpoint["id"],
                "locale": locale,
                "mode": "confidential",
                "expires_in_days": 30,
                "send_email": not revoked,
            },
            expect=(201,),
        )
        invitation, url = answer["invitation"], answer["survey_url"]
        if not url.startswith(f"{API}/s/"):
            die(f"survey_url {url!r} is not under the public URL {API}/s/")
        if invitation.get("status") != "created":
            die(f"a new invitation says status {invitation.get('status')!r}, expected 'created'")
        if revoked:
            call("POST", f"/api/v1/survey-invitations/{invitation['id']}/revoke", expect=(200, 204))
            _, after = call("GET", f"/api/v1/survey-invitations/{invitation['id']}")
            if after.get("status") != "revoked":
                die(f"a revoked invitation says status {after.get('status')!r}")
        invitations[key] = {
            "id": invitation["id"],
            "candidate_id": created["id"],
            "locale": locale,
            "survey_url": url,
        }
    listed = ", ".join(f"{key} {value['id']}" for key, value in invitations.items())
    print(f"touchpoint {touchpoint['id']}, invitations {listed}")

    mails = wait_for_mail(Path(args.mail), 2, timeout=30)
    by_recipient = {}
    for path, message in mails:
        rcpt = message["X-Sink-Rcpt-To"]
        by_recipient.setdefault(rcpt, []).append((path, message))
    links = {}
    for locale in ("vi", "en"):
        address = CANDIDATES[locale]["email"]
        got = by_recipient.get(address, [])
        if len(got) != 1:
            die(f"expected one e-mail to {address}, got {len(got)}; envelopes: {sorted(by_recipient)}")
        path, message = got[0]
        links[locale] = check_mail(path, message, locale, invitations[locale]["survey_url"])
    stray = set(by_recipient) - {CANDIDATES[k]["email"] for k in ("vi", "en")}
    if stray:
        die(f"e-mails to {sorted(stray)}: a revoked or unsent invitation was mailed")
    # The sender marks an invitation sent once the relay took it, just after
    # the sink wrote the file.
    for locale in ("vi", "en"):
        wait_for_status(invitations[locale]["id"], "sent", timeout=5)

    plan = {
        "base": API,
        "touchpoint_id": touchpoint["id"],
        "invitations": invitations,
        "unknown_url": API + UNKNOWN_TOKEN_PATH,
        "revoked": {locale: invitations[f"{locale}-revoked"]["survey_url"] for locale in ("vi", "en")},
        "answer": {},
        "screenshots": {locale: f"docs/survey-{locale}.png" for locale in ("vi", "en")},
    }
    for locale, answer in ANSWERS.items():
        start = answer["start_score"]
        # The link the candidate clicks, taken from the e-mail itself.
        url = links[locale][start] if start is not None else links[locale]["plain"]
        plan["answer"][locale] = {**answer, "url": url, "survey_url": invitations[locale]["survey_url"]}
    Path(args.plan).write_text(json.dumps(plan, indent=2, ensure_ascii=False))
    print(f"plan for the browser: {args.plan}")


def wait_for_status(invitation_id: int, status: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        _, invitation = call("GET", f"/api/v1/survey-invitations/{invitation_id}")
        if invitation.get("status") == status:
            return
        if time.monotonic() > deadline:
            die(
                f"invitation {invitation_id} says status {invitation.get('status')!r} after {timeout:.0f} s, expected {status!r}"
            )
        time.sleep(0.2)


def wait_for_mail(directory: Path, count: int, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        files = sorted(directory.glob("*.eml"))
        if len(files) >= count:
            break
        if time.monotonic() > deadline:
            die(f"{len(files)} e-mail(s) in {directory} after {timeout:.0f} s, expected {count}")
        time.sleep(0.2)
    print(f"{len(files)} e-mails received in {timeout - (deadline - time.monotonic()):.1f} s")
    # A moment for a stray third one (a revoked invitation mailed by mistake).
    time.sleep(1.0)
    files = sorted(directory.glob("*.eml"))
    return [(f, email.message_from_bytes(f.read_bytes(), policy=email.policy.default)) for f in files]


def check_mail(path: Path, message, locale: str, survey_url: str) -> dict:
    """Checks one invitation e-mail; returns its links: {0..10: url, "plain": url}."""
    where = f"{path.name} ({locale})"
    subject = str(message["Subject"] or "")
    sender = str(message["From"] or "")
    if SENDER not in sender:
        die(f"{where}: From is {sender!r}, expected {SENDER}")
    plain, rich = message.get_body(("plain",)), message.get_body(("html",))
    if plain is None or rich is None:
        die(f"{where}: expected a text/plain and a text/html part, got {message.get_content_type()}")
    text, markup = plain.get_content(), rich.get_content()

    # The language: Vietnamese letters in the vi subject and body, none in the en ones.
    if locale == "vi":
        if not VIETNAMESE.search(subject):
            die(f"{where}: the subject {subject!r} has no Vietnamese word (no letter with Vietnamese diacritics)")
        if not VIETNAMESE.search(text) or not VIETNAMESE.search(markup):
            die(f"{where}: the body is not in Vietnamese")
    else:
        for part, value in (("subject", subject), ("text body", text), ("HTML body", markup)):
            if VIETNAMESE.search(value):
                die(f"{where}: the {part} has Vietnamese letters: {value[:200]!r}")
    lang = re.search(r"<html[^>]*\blang=\"?([A-Za-z-]+)", markup)
    if lang and not lang.group(1).lower().startswith(locale):
        die(f"{where}: the HTML part says lang={lang.group(1)!r}")

    # The eleven score links, in both parts, each exactly {survey_url}?score=N.
    expected = {f"{survey_url}?score={n}" for n in range(11)}
    text_links = set(re.findall(r"https?://[^\s<>\"')\]]+", text))
    parser = Links()
    parser.feed(markup)
    html_links = set(parser.hrefs)
    for part, found in (("text/plain", text_links), ("text/html", html_links)):
        scored = {u for u in found if "?score=" in u}
        if scored != expected:
            die(
                f"{where}: the {part} part's score links are not the eleven {survey_url}?score=0..10;"
                f" missing {sorted(expected - scored)}, unexpected {sorted(scored - expected)}"
            )
        if any(not u.startswith(f"{API}/") for u in found if "/s/" in u):
            die(f"{where}: a survey link in the {part} part is not under {API}")

    # No candidate's name anywhere: headers, either part (any candidate:
    # a mix-up would put another's name in).
    whole = "\n".join([f"{k}: {v}" for k, v in message.items()] + [text, markup]).casefold()
    for candidate in CANDIDATES.values():
        name = candidate["display_name"]
        words = [name] + [w for w in name.split() if len(w) >= 4]
        leaked = [w for w in words if w.casefold() in whole]
        if leaked:
            die(f"{where}: the candidate's name is in the e-mail ({', '.join(leaked)})")

    links = {n: f"{survey_url}?score={n}" for n in range(11)}
    # The contract asks only for the score links; a plain one is the same
    # page with nothing chosen, which the browser answers from scratch.
    links["plain"] = survey_url
    has_plain = survey_url in text_links or survey_url in html_links
    print(
        f"{where}: subject {subject!r}; 11 score links in both parts"
        f"{', and the plain link' if has_plain else ''}; no candidate name"
    )
    return links


# --- answer (no browser) -------------------------------------------------------


def answer(args) -> None:
    plan = json.loads(Path(args.plan).read_text())
    result = {"answers": {}, "browser": False}
    for locale, given in plan["answer"].items():
        status = post_form(given["survey_url"], {"score": str(given["score"]), "comment": given["comment"]})
        if status != 200:
            die(f"POST {given['survey_url']} answered {status}, expected 200")
        result["answers"][locale] = {"score": given["score"], "comment": given["comment"]}
    Path(args.result).write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print("answered both invitations with a plain form POST (no browser)")


# --- verify --------------------------------------------------------------------


def verify(args) -> None:
    plan = json.loads(Path(args.plan).read_text())
    result = json.loads(Path(args.result).read_text())
    touchpoint_id = plan["touchpoint_id"]
    invitations = plan["invitations"]

    for locale, given in result["answers"].items():
        invitation = invitations[locale]
        _, journey = call("GET", f"/api/v1/candidates/{invitation['candidate_id']}/journey")
        steps = [s for s in journey["steps"] if s.get("source") == "candidate_survey"]
        if len(steps) != 1:
            die(f"{locale}: expected one candidate_survey encounter in the journey, got {len(steps)}: {journey}")
        step = steps[0]
        if step["score"] != given["score"] or step["touchpoint_id"] != touchpoint_id:
            die(
                f"{locale}: the survey's encounter has score {step['score']} at touchpoint {step['touchpoint_id']},"
                f" the browser gave {given['score']} at {touchpoint_id}"
            )
        if step.get("note") != given["comment"]:
            die(f"{locale}: the encounter's note is {step.get('note')!r}, the comment given was {given['comment']!r}")
        _, state = call("GET", f"/api/v1/survey-invitations/{invitation['id']}")
        if state.get("status") != "answered" or state.get("encounter_id") != step["encounter_id"]:
            die(
                f"{locale}: invitation {invitation['id']} says status {state.get('status')!r}, encounter"
                f" {state.get('encounter_id')}; expected 'answered', encounter {step['encounter_id']}"
            )
        print(f"{locale}: encounter {step['encounter_id']} in the journey, score {step['score']}; invitation answered")
    for locale in ("vi", "en"):
        _, state = call("GET", f"/api/v1/survey-invitations/{invitations[f'{locale}-revoked']['id']}")
        if state.get("status") != "revoked":
            die(f"{locale}-revoked: status {state.get('status')!r}, expected 'revoked'")

    # Whole UTC days around today, so a run across midnight still counts.
    today = dt.datetime.now(dt.UTC).date()
    window = f"from={today - dt.timedelta(days=1)}&to={today + dt.timedelta(days=2)}"
    _, report = call("GET", f"/api/v1/reports/survey-responses?{window}&group_by=touchpoint")
    groups = [g for g in report["groups"] if g["group"] == str(touchpoint_id)]
    # A fresh database: four invitations, two of them e-mailed and answered.
    expected = {"invited": 4, "sent": 2, "answered": len(result["answers"]), "suppressed": False}
    if len(groups) != 1 or any(groups[0].get(k) != v for k, v in expected.items()):
        die(f"the survey-responses report for touchpoint {touchpoint_id} should say {expected}: {report}")
    group = groups[0]
    print(
        f"survey-responses report, touchpoint {touchpoint_id}: invited {group['invited']}, sent {group['sent']},"
        f" opened {group['opened']}, answered {group['answered']}"
    )

    # The public POST's refusals (the browser saw the GET pages).
    checks = [
        ("answered", plan["answer"]["vi"]["survey_url"], 409),
        ("revoked", plan["revoked"]["en"], 410),
        ("unknown", plan["unknown_url"], 404),
    ]
    for what, url, expected in checks:
        status = post_form(url, {"score": "5", "comment": ""})
        if status != expected:
            die(f"POST {url} ({what}) answered {status}, expected {expected}")
    print("public POST: 409 answered, 410 revoked, 404 unknown")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("setup")
    p.add_argument("--mail", required=True)
    p.add_argument("--plan", required=True)
    p = commands.add_parser("answer")
    p.add_argument("--plan", required=True)
    p.add_argument("--result", required=True)
    p = commands.add_parser("verify")
    p.add_argument("--plan", required=True)
    p.add_argument("--result", required=True)
    args = parser.parse_args()
    if not API or not TOKEN:
        die("TT_API and TT_TOKEN must be set")
    {"setup": setup, "answer": answer, "verify": verify}[args.command](args)


if __name__ == "__main__":
    main()
