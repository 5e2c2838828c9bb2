-- The keyed, anchored audit trail (issue #17 item 4). Kept equal in both dialects, column for column.
--
-- `keyed_from`: the first entry chained with the HMAC key (NULL: not keyed yet; the next append
-- writes the marker entry, see src/audit/mod.rs). The verifier does not trust it, the anchors do.
ALTER TABLE audit_head ADD COLUMN keyed_from BIGINT;

-- INSERT OR REPLACE (and REPLACE) over an existing entry deletes the old row without firing the
-- DELETE trigger (recursive triggers are off), so the update/delete triggers alone let an entry be
-- replaced. A new entry must have a new sequence number.
CREATE TRIGGER audit_entries_no_replace BEFORE INSERT ON audit_entries
WHEN EXISTS (SELECT 1 FROM audit_entries WHERE seq = NEW.seq)
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only: an entry with this sequence number exists');
END;
