-- Retention (issue #5): when the received payload and the rendered messages of a handover were
-- deleted. The validated record, the routes and the audit trail stay; NULL = bodies still kept.
-- Kept equal in both dialects.
ALTER TABLE handovers ADD COLUMN bodies_purged_at TEXT;
CREATE INDEX handovers_by_purge ON handovers (bodies_purged_at, created_at);
