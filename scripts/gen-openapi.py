#!/usr/bin/env python3
"""Writes docs/openapi.json, the API's OpenAPI 3.1 document (served at /openapi.json).
Run it after changing a route or a body; `--check` fails when the file is stale."""
import json, os
# The providers with a spec, so generated requests can name a real one.
here = os.path.dirname(os.path.abspath(__file__))
providers = sorted(f[:-5] for f in os.listdir(os.path.join(here, "..", "providers")) if f.endswith(".toml") and f != "registry.toml")
def ref(n): return {"$ref": f"#/components/schemas/{n}"}
def err(desc): return {"description": desc, "content": {"application/json": {"schema": ref("Error")}}}
def ok(desc, schema): return {"description": desc, "content": {"application/json": {"schema": schema}}}
common = {"401": err("No or unknown bearer token (`unauthenticated`)"), "400": err("Malformed request (`malformed_json`, `invalid_query`, `secret_in_query`)")}
acting = [
 {"name": "X-Acting-User", "in": "header", "required": False, "schema": {"type": "string", "maxLength": 200}, "description": "The dashboard user acting (for the audit log)."},
 {"name": "X-Can-Update-Credentials", "in": "header", "required": False, "schema": {"type": "string", "enum": ["true", "false"]}, "description": "Whether that user may update credentials; without it credential changes and Reconnect jobs are refused (403) and alerts prompt `unauthorized` / `learn_more`."},
]
idp = lambda what: {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}, "description": f"The {what} id."}
outcome = {"type": "string", "description": "`category/reason` from the outcome taxonomy (`pairing-worker outcomes`), e.g. `invalid_credentials/wrong_password`.", "example": "two_factor/code_required"}
dt = {"type": "string", "format": "date-time"}
schemas = {
 "Error": {"type": "object", "required": ["error"], "properties": {
   "error": {"type": "object", "required": ["code", "message"], "properties": {
     "code": {"type": "string", "enum": ["unauthenticated", "forbidden", "not_found", "malformed_json", "invalid_field", "invalid_query", "unreadable_body", "body_too_large", "unknown_provider", "secret_in_query", "account_busy", "credentials_rejected", "login_budget_spent", "not_awaiting_code", "code_already_submitted", "unavailable"]},
     "message": {"type": "string"}, "field": {"type": "string", "description": "Path of the offending field, e.g. `stores[1].location`."}}},
   "job": ref("Job")}},
 "Credentials": {"type": "object", "additionalProperties": False, "required": ["username", "password"], "properties": {"username": {"type": "string", "minLength": 1}, "password": {"type": "string", "minLength": 1, "writeOnly": True}}},
 "Mailbox": {"type": "object", "additionalProperties": False, "required": ["host", "username", "password"], "description": "The mailbox the platform's verification codes are sent to (IMAP over TLS, system CAs).", "properties": {
   "host": {"type": "string", "minLength": 1, "description": "A public host: a name that resolves only to public addresses, or a public IP address. Loopback, private, link-local, shared (CGNAT), cloud metadata and other reserved addresses are refused (422), unless the operator allows them (`serve --allow-private-hosts`); the check runs again on every connection."}, "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 993},
   "username": {"type": "string", "minLength": 1}, "password": {"type": "string", "minLength": 1, "writeOnly": True}, "folder": {"type": "string", "default": "INBOX"}}},
 "Store": {"type": "object", "required": ["id", "location", "brand"], "properties": {"id": {"type": "string", "minLength": 1, "description": "The provider's store id."}, "location": {"type": "string"}, "brand": {"type": "string"}}},
 "CreateAccount": {"type": "object", "additionalProperties": False, "required": ["provider", "credentials"], "properties": {
   "provider": {"type": "string", "enum": providers, "description": "A provider with a spec (`pairing-worker providers`)."}, "credentials": ref("Credentials"),
   "totp_secret": {"type": "string", "writeOnly": True, "description": "Base32 secret or otpauth:// URL of the portal's authenticator 2FA."},
   "mailbox": ref("Mailbox"),
   "stores": {"type": "array", "items": ref("Store")}}},
 "UpdateAccount": {"type": "object", "additionalProperties": False, "properties": {
   "credentials": ref("Credentials"), "totp_secret": {"type": ["string", "null"], "writeOnly": True},
   "mailbox": {"oneOf": [ref("Mailbox"), {"type": "null"}], "description": "`null` removes it."}, "stores": {"type": "array", "items": ref("Store")}}},
 "Health": {"type": "object", "required": ["status"], "properties": {
   "status": {"type": "string", "enum": ["unknown", "healthy", "needs_attention"]}, "since": dt, "error": outcome,
   "resolution": ref("Resolution"), "last_change": {"type": "string", "enum": ["healthy", "broke", "resolved", "unchanged", "changed"]}}},
 "Resolution": {"type": "string", "enum": ["none", "reconnect", "external_steps", "retry_later", "contact_support"]},
 "Account": {"type": "object", "required": ["id", "organisation", "provider", "stores", "credentials_version", "credentials_rejected", "created_at", "updated_at", "health"], "properties": {
   "id": {"type": "string"}, "organisation": {"type": "string"}, "provider": {"type": "string"}, "stores": {"type": "array", "items": ref("Store")},
   "credentials_version": {"type": "integer"}, "credentials_rejected": {"type": "boolean"}, "code_pending_until": {"type": ["string", "null"], "format": "date-time"},
   "created_at": dt, "updated_at": dt, "health": ref("Health")}},
 "CodeRequest": {"type": "object", "required": ["channel"], "properties": {"channel": {"type": "string", "enum": ["email", "sms", "authenticator_app"]}, "destination": {"type": ["string", "null"]}, "code_length": {"type": ["integer", "null"]}, "expires_at": {"type": ["string", "null"], "format": "date-time"}}},
 "Job": {"type": "object", "required": ["id", "account_id", "provider", "kind", "interactive", "state", "credentials_version", "attempts", "run_at", "created_at", "updated_at"], "properties": {
   "id": {"type": "string"}, "account_id": {"type": "string"}, "provider": {"type": "string"}, "kind": {"type": "string", "enum": ["pair", "recheck"]},
   "interactive": {"type": "boolean"}, "state": {"type": "string", "enum": ["queued", "running", "awaiting_code", "succeeded", "failed", "cancelled"]},
   "credentials_version": {"type": "integer"}, "attempts": {"type": "integer"}, "run_at": dt,
   "code_request": ref("CodeRequest"), "code_verdict": outcome, "outcome": outcome,
   "result": {"type": "object", "description": "The pairing report: outcome, decision, the portal's words, stores found, steps (never a typed value)."},
   "error": {"type": "string"}, "created_at": dt, "updated_at": dt, "started_at": dt, "finished_at": dt}},
 "StartJob": {"type": "object", "additionalProperties": False, "required": ["kind"], "properties": {
   "kind": {"type": "string", "enum": ["pair", "recheck"], "description": "`pair`: Reconnect with new credentials. `recheck`: \"I have completed these steps\" with the stored ones."},
   "credentials": ref("Credentials"), "interactive": {"type": "boolean", "default": True}}},
 "Code": {"type": "object", "additionalProperties": False, "required": ["code"], "properties": {"code": {"type": "string", "writeOnly": True}}},
 "Alert": {"type": "object", "required": ["account_id", "provider", "error", "category", "since", "impacted_stores", "resolution", "prompt"], "properties": {
   "account_id": {"type": "string"}, "provider": {"type": "string"}, "error": outcome, "category": {"type": "string"}, "reason": {"type": "string"}, "since": dt,
   "impacted_stores": {"type": "array", "items": ref("Store")}, "resolution": ref("Resolution"),
   "prompt": {"type": "string", "enum": ["reconnect", "unauthorized", "external_steps", "learn_more", "retry_later", "contact_support"]},
   "external_steps": {"type": "object", "required": ["language", "steps", "support_url"], "properties": {"language": {"type": "string"}, "steps": {"type": "array", "items": {"type": "string"}}, "support_url": {"type": "string"}}},
   "recheck": {"type": "string", "enum": ["unchanged", "changed"]},
   "active_job": {"type": "object", "required": ["id", "state"], "properties": {"id": {"type": "string"}, "state": {"type": "string"}}}}},
 "Webhook": {"type": "object", "additionalProperties": False, "required": ["url"], "properties": {"url": {"type": "string", "format": "uri", "description": "An absolute http(s) URL on a public host. Its host: a name that resolves only to public addresses, or a public IP address. Loopback, private, link-local, shared (CGNAT), cloud metadata and other reserved addresses are refused (422), unless the operator allows them (`serve --allow-private-hosts`); the check runs again on every connection."}}},
}
def op(summary, responses, params=None, body=None, extra=None):
    o = {"summary": summary, "responses": {**responses, **common}, "parameters": (params or []) + acting}
    if body: o["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(body)}}}
    return o
paths = {
 "/v1/accounts": {
   "get": op("List the organisation's accounts with their health", {"200": ok("Accounts", {"type": "array", "items": ref("Account")})}),
   "post": op("Create an account (needs credential permission)", {"201": ok("Created", ref("Account")), "403": err("No credential permission"), "413": err("Body too large"), "422": err("Invalid field or unknown provider")}, body="CreateAccount")},
 "/v1/accounts/{id}": {
   "get": op("Read an account (never its secrets)", {"200": ok("Account", ref("Account")), "404": err("Unknown or foreign id")}, [idp("account")]),
   "patch": op("Update credentials (needs permission), TOTP secret or stores", {"200": ok("Account", ref("Account")), "403": err("No credential permission"), "404": err("Unknown or foreign id"), "413": err("Body too large"), "422": err("Invalid field")}, [idp("account")], "UpdateAccount"),
   "delete": op("Delete an account and destroy its credentials", {"204": {"description": "Deleted"}, "403": err("No credential permission"), "404": err("Unknown or foreign id")}, [idp("account")])},
 "/v1/accounts/{id}/jobs": {
   "post": op("Start a Reconnect (`pair`) or a re-check", {"202": ok("Queued", ref("Job")), "403": err("No credential permission"), "404": err("Unknown or foreign id"), "409": err("Account busy (the live job is in `job`), credentials rejected, login budget spent"), "413": err("Body too large"), "422": err("Invalid field")}, [idp("account")], "StartJob")},
 "/v1/jobs/{id}": {
   "get": op("Read a job; long-poll with `wait` and `after`", {"200": ok("Job", ref("Job")), "404": err("Unknown or foreign id")}, [idp("job"),
      {"name": "wait", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0, "maximum": 30}},
      {"name": "after", "in": "query", "required": False, "schema": {"type": "string", "format": "date-time"}}])},
 "/v1/jobs/{id}/code": {
   "post": op("Submit the verification code a job awaits", {"202": ok("Code handed to the job", ref("Job")), "404": err("Unknown or foreign id"), "409": err("Not awaiting a code, or a code is already being checked"), "413": err("Body too large"), "422": err("Code of the wrong shape")}, [idp("job")], "Code")},
 "/v1/jobs/{id}/cancel": {
   "post": op("Cancel a job", {"200": ok("Job", ref("Job")), "404": err("Unknown or foreign id")}, [idp("job")])},
 "/v1/repair-alerts": {
   "get": op("Every account needing attention, with the prompt for the acting user", {"200": ok("Alerts", {"type": "object", "required": ["alerts"], "properties": {"alerts": {"type": "array", "items": ref("Alert")}}})},
     [{"name": "lang", "in": "query", "required": False, "schema": {"type": "string"}, "description": "Language of the external steps (`en`, `fr`, `fr-CA`, ...)."}])},
 "/v1/webhook": {
   "get": op("The webhook endpoint and its latest deliveries", {"200": ok("Webhook", {"type": "object"}), "404": err("No webhook registered")}),
   "put": op("Register the webhook endpoint; returns the signing secret once", {"200": ok("Registered", {"type": "object", "required": ["url", "secret"], "properties": {"url": {"type": "string"}, "secret": {"type": "string"}}}), "413": err("Body too large"), "422": err("Invalid URL, or a host this worker may not reach")}, body="Webhook")},
}
pub = {
 "/healthz": {"get": {"summary": "Liveness", "security": [], "responses": {"200": {"description": "ok", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
 "/readyz": {"get": {"summary": "Readiness: database and WebDriver reachable", "security": [], "responses": {"200": ok("Ready", {"type": "object"}), "503": ok("Not ready", {"type": "object"})}}},
 "/metrics": {"get": {"summary": "Prometheus metrics (operator endpoint)", "description": "Counts across every organisation and needs no token: serve it apart with `serve --metrics-listen ADDR`, and the API listener answers 404 here.", "security": [], "responses": {"200": {"description": "Exposition text", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
 "/openapi.json": {"get": {"summary": "This document", "security": [], "responses": {"200": ok("OpenAPI 3.1", {"type": "object"})}}},
}
doc = {"openapi": "3.1.0",
 "info": {"title": "pairing-worker API", "version": "1", "description": "Accounts, pairing jobs, verification codes and repair alerts for the dashboard backend. Every `/v1` route needs `Authorization: Bearer <token>` (`pairing-worker tokens create`) and only sees the token's organisation. Webhooks are signed: `Pairing-Worker-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, \"<t>.<body>\")>`."},
 "servers": [{"url": "http://127.0.0.1:8080"}],
 "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
 "security": [{"bearer": []}],
 "paths": {**pub, **paths}}
import sys
target = os.path.join(here, "..", "docs", "openapi.json")
text = json.dumps(doc, indent=2) + "\n"
if "--check" in sys.argv:
    if open(target).read() != text:
        sys.exit("docs/openapi.json is stale: run scripts/gen-openapi.py")
else:
    open(target, "w").write(text)
