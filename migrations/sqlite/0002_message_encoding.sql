-- Rendered messages may be binary (the A4 PDF for the print queue): such bodies are stored base64 in
-- the text column, and `encoding` says which. Kept equal in both dialects.
ALTER TABLE messages ADD COLUMN encoding TEXT NOT NULL DEFAULT 'utf-8' CHECK (encoding IN ('utf-8', 'base64'));
