-- The gateway's store (PostgreSQL). Kept column for column equal to ../sqlite/0001_gateway.sql; times
-- are RFC 3339 UTC text (they sort as text), JSON is text.

-- One accepted handover: what was received, the validated record, who sent it.
CREATE TABLE handovers (
    id               TEXT PRIMARY KEY,
    organization     TEXT NOT NULL,          -- sender organisation, 'ura:...' / 'agb:...'
    client_id        TEXT NOT NULL,
    patient_bsn      TEXT NOT NULL,
    context          TEXT NOT NULL,
    sender_role      TEXT NOT NULL,
    input_form       TEXT NOT NULL,
    sharing_consent  TEXT,                   -- form item 8b as recorded: 'agreed' | 'unknown' | NULL
    envelope_json    TEXT NOT NULL,          -- sender, recipients, context (no record content)
    received_payload TEXT NOT NULL,          -- the request body as received
    record_json      TEXT NOT NULL,          -- the validated record, canonical uniform JSON
    created_at       TEXT NOT NULL
);
CREATE INDEX handovers_by_org ON handovers (organization, created_at);
CREATE INDEX handovers_by_patient ON handovers (patient_bsn);

-- One route per recipient x channel.
CREATE TABLE routes (
    id                 TEXT PRIMARY KEY,
    handover_id        TEXT NOT NULL REFERENCES handovers (id),
    position           BIGINT NOT NULL,
    recipient_json     TEXT NOT NULL,
    recipient_org      TEXT,                 -- 'ura:...' / 'agb:...' when the recipient names one
    recipient_role     TEXT NOT NULL,
    channel            TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN
                         ('pending','delivering','delivered','retrying','dead','blocked-consent','cancelled')),
    reason             TEXT,
    attempts           BIGINT NOT NULL DEFAULT 0,
    next_attempt_at    TEXT,
    last_error         TEXT,
    consent_permit     BIGINT NOT NULL,      -- 1 permit, 0 deny: the last consent decision
    consent_reason     TEXT NOT NULL,
    consent_decided_at TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX routes_by_handover ON routes (handover_id, position);
CREATE INDEX routes_by_status ON routes (status, next_attempt_at);
CREATE INDEX routes_by_recipient ON routes (recipient_org);

-- Rendered message bodies, apart from the audit trail (pruned on their own retention).
CREATE TABLE messages (
    route_id     TEXT PRIMARY KEY REFERENCES routes (id),
    content_type TEXT NOT NULL,
    renderer     TEXT NOT NULL,
    body         TEXT NOT NULL,
    created_at   TEXT NOT NULL
);

-- The patient's privacy consent (scope patient-privacy), as recorded through the API; the newest row
-- per patient is in force. Never the ACP treatment Consents, which live inside the record.
CREATE TABLE consents (
    id              BIGSERIAL PRIMARY KEY,
    patient_bsn     TEXT NOT NULL,
    decision        TEXT NOT NULL CHECK (decision IN ('permit','deny','withdrawn')),
    scope           TEXT NOT NULL,
    actors_json     TEXT,                    -- JSON array of organisation ids the provision names; NULL = all
    period_end      TEXT,
    source          TEXT NOT NULL,           -- 'fhir-consent' | 'simple-json' | 'api-delete'
    resource_json   TEXT,
    recorded_by     TEXT NOT NULL,           -- organisation id
    recorded_client TEXT NOT NULL,
    recorded_at     TEXT NOT NULL
);
CREATE INDEX consents_by_patient ON consents (patient_bsn, id);

-- Idempotency-Key: one answer per client and key.
CREATE TABLE idempotency_keys (
    client_id     TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status_code   BIGINT NOT NULL,
    response_body TEXT NOT NULL,
    handover_id   TEXT,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (client_id, idem_key)
);

-- The NEN 7513 audit trail: append-only, hash-chained. `content` is the canonical JSON that is
-- hashed; the other columns repeat parts of it for lookups, and the verifier checks that they agree.
CREATE TABLE audit_entries (
    seq          BIGINT PRIMARY KEY,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL,
    content      TEXT NOT NULL,
    event_code   TEXT NOT NULL,
    recorded_at  TEXT NOT NULL,
    patient_bsn  TEXT,
    organization TEXT NOT NULL,
    handover_id  TEXT
);
CREATE INDEX audit_by_patient ON audit_entries (patient_bsn, seq);

-- The head of the chain: the one row every append updates, which serialises appenders.
CREATE TABLE audit_head (
    id   BIGINT PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE FUNCTION audit_entries_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_entries_no_update BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only();
