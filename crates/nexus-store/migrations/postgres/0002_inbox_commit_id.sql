-- The id of the transaction that completed the turn. The statements of that transaction that
-- follow the inbox update check it, so one batch both claims the turn and writes its results,
-- and a transaction that lost the claim writes nothing.
ALTER TABLE inbox ADD COLUMN commit_id UUID;
