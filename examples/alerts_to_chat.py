"""Posts touchpoint-tracker's alerts to a chat channel (a Slack or Teams incoming webhook).

    WEBHOOK_SECRET=whsec_... CHAT_WEBHOOK_URL=https://hooks.slack.com/services/... PORT=8000 \\
        python examples/alerts_to_chat.py

Point a webhook endpoint (event types alert.opened, alert.resolved) at it
through a TLS reverse proxy (endpoints must be https://). Needs the
standardwebhooks package (pinned in clients/python/requirements.txt).
"""

import json
import os
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

webhook = Webhook(os.environ["WEBHOOK_SECRET"])
posted = set()  # webhook-ids already posted: after a crash an event may come twice


def text(event: dict) -> str:
    alert, figures = event["data"], event["data"]["details"]
    what = f"Alert {alert['alert_id']} {event['type'].removeprefix('alert.')}"
    if alert["rule_kind"] == "detractor":
        return f"{what}: a score of {figures['score']} on touchpoint {figures['touchpoint_id']}"
    return (
        f"{what}: cNPS of {figures['group_by']} {alert['group']} {figures['baseline_cnps']} -> "
        f"{figures['cnps']} in the {figures['period']} from {alert['period_start']} "
        f"(signal: {figures['signal']}, p = {figures['p_value']:.2g})"
    )


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            event = webhook.verify(body, dict(self.headers))  # the signature, and a timestamp within 5 minutes
        except WebhookVerificationError:
            return self.send_error(401)  # not from the service: nothing is posted
        event_id = self.headers["webhook-id"]
        if event["type"] in ("alert.opened", "alert.resolved") and event_id not in posted:
            chat = urllib.request.Request(
                os.environ["CHAT_WEBHOOK_URL"],
                json.dumps({"text": text(event)}).encode(),
                {"Content-Type": "application/json"},
            )
            try:
                urllib.request.urlopen(chat, timeout=10).close()
            except OSError:
                return self.send_error(502)  # anything but 2xx: the service tries again later
            posted.add(event_id)
        self.send_response(204)
        self.end_headers()


HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8000"))), Receiver).serve_forever()
