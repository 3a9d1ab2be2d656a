-- Admins disable web accounts instead of deleting them: the exchange log and
-- documents refer to users by id, so the row stays. A disabled user cannot
-- log in and their sessions end.
ALTER TABLE users ADD COLUMN disabled_at BIGINT;  -- when an admin disabled the account (ms)
