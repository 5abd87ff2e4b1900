-- The write path's append, in one statement: one round trip that takes the table lock
-- (as eventsourcing's recorder does, so that notification ids are committed in order),
-- notifies listeners, records the movements' idempotency rows and inserts their events,
-- returning the notification ids. Run in autocommit, the statement is its transaction.
-- A duplicate (source, movement_id) or (originator_id, originator_version) fails the
-- whole statement with a unique violation: nothing of the group is written.
CREATE FUNCTION append_movements(
    event_ids uuid[],
    event_versions bigint[],
    event_topics text[],
    event_states bytea[],
    key_sources text[],
    key_movement_ids text[],
    key_digests bytea[],
    key_responses bytea[],
    key_accounts uuid[],
    key_versions bigint[]
) RETURNS SETOF bigint
LANGUAGE plpgsql
SET search_path FROM CURRENT
SET lock_timeout = '10s'
AS $$
BEGIN
    LOCK TABLE ledger_events IN EXCLUSIVE MODE;
    NOTIFY ledger_events;
    INSERT INTO movement_keys
        (source, movement_id, request_digest, response, account_id, account_version)
    SELECT * FROM unnest(
        key_sources, key_movement_ids, key_digests, key_responses, key_accounts, key_versions
    );
    RETURN QUERY
    INSERT INTO ledger_events (originator_id, originator_version, topic, state)
    SELECT * FROM unnest(event_ids, event_versions, event_topics, event_states)
    RETURNING notification_id;
END
$$;
