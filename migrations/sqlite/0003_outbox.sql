-- The outbox (issue #6): what the delivery worker needs on a route, replay lineage, and the MDO
-- worklist. Kept column for column equal to ../postgres/0003_outbox.sql.

-- A claimed route carries a lease: who holds it (worker name and a token per claim) and until when.
-- A route `delivering` whose lease has expired belongs to a crashed worker and is claimed again.
ALTER TABLE routes ADD COLUMN lease_owner TEXT;
ALTER TABLE routes ADD COLUMN lease_expires_at TEXT;
-- What the receiver said when it took the message, and when.
ALTER TABLE routes ADD COLUMN delivered_at TEXT;
ALTER TABLE routes ADD COLUMN receipt TEXT;
-- A replay is a new route linked to the delivered route it repeats (replay_number 1, 2, ...); the
-- original keeps its own history. replay_of is NULL and replay_number 0 on an original route.
ALTER TABLE routes ADD COLUMN replay_of TEXT REFERENCES routes (id);
ALTER TABLE routes ADD COLUMN replay_number BIGINT NOT NULL DEFAULT 0;

-- Claiming: due routes by status and time, and delivering routes by lease expiry.
CREATE INDEX routes_by_lease ON routes (status, lease_expires_at);
CREATE INDEX routes_by_replay ON routes (replay_of);

-- The `mdo` channel's sink: items the receiving organisation's client fetches with GET /v1/worklist.
-- `id` is the delivery key, so a repeated attempt after a crash stores the item once.
CREATE TABLE worklist_items (
    id            TEXT PRIMARY KEY,
    route_id      TEXT NOT NULL REFERENCES routes (id),
    handover_id   TEXT NOT NULL REFERENCES handovers (id),
    recipient_org TEXT,
    content_type  TEXT NOT NULL,
    body          TEXT NOT NULL,
    encoding      TEXT NOT NULL CHECK (encoding IN ('utf-8', 'base64')),
    created_at    TEXT NOT NULL
);
CREATE INDEX worklist_by_recipient ON worklist_items (recipient_org, created_at);
