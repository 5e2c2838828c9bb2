-- Consent authority (issue 17): a permit recorded as the patient's own renewed consent names the
-- withdrawal or refusal (consents.id) it supersedes; NULL for every other decision. Which decisions
-- stand is derived from the history (src/consent/history.rs), never by changing or deleting rows.
-- Kept equal in both dialects.
ALTER TABLE consents ADD COLUMN renews BIGINT;
