-- The keyed, anchored audit trail (issue #17 item 4). Kept equal in both dialects, column for column.
--
-- `keyed_from`: the first entry chained with the HMAC key (NULL: not keyed yet; the next append
-- writes the marker entry, see src/audit/mod.rs). The verifier does not trust it, the anchors do.
ALTER TABLE audit_head ADD COLUMN keyed_from BIGINT;

-- TRUNCATE fires no row triggers, so the UPDATE/DELETE trigger let the whole trail be emptied.
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only();
