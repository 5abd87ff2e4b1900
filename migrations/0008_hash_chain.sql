-- A tamper-evident log: every stored event carries a link of a hash chain in the global
-- order (notification_id), computed in the same statement that inserts it:
--
--   event_hash = sha256(int8(notification_id) || uuid(originator_id)
--                       || int8(originator_version) || int4(len(topic)) || topic
--                       || int4(len(state)) || state)            (big-endian, topic UTF-8)
--   link       = sha256(previous link || event_hash)              (the first: 32 zero bytes)
--
-- Inserts are serialized by the table lock both write paths take (eventsourcing's recorder
-- and append_movements), so the previous event of the order is the one with the greatest
-- notification id below the new one; a row-level BEFORE trigger sees the rows the same
-- statement inserted before. Altering, deleting or reordering a stored row breaks the
-- chain at that row or the next; `loyalty audit verify` walks it, and signed checkpoints
-- (chain_checkpoints) pin it so that a rewritten chain or a cut tail is seen too.
ALTER TABLE ledger_events ADD COLUMN link bytea;

CREATE FUNCTION event_hash(
    notification_id bigint, originator_id uuid, originator_version bigint, topic text, state bytea
) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN sha256(
    int8send(notification_id) || uuid_send(originator_id) || int8send(originator_version)
    || int4send(octet_length(convert_to(coalesce(topic, ''), 'UTF8')))
    || convert_to(coalesce(topic, ''), 'UTF8')
    || int4send(octet_length(coalesce(state, ''::bytea))) || coalesce(state, ''::bytea)
);

CREATE FUNCTION chain_link() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    previous bytea;
BEGIN
    SELECT e.link INTO previous FROM ledger_events e
    WHERE e.notification_id < NEW.notification_id
    ORDER BY e.notification_id DESC LIMIT 1;
    NEW.link := sha256(
        coalesce(previous, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
        || event_hash(
            NEW.notification_id, NEW.originator_id, NEW.originator_version, NEW.topic, NEW.state
        )
    );
    RETURN NEW;
END
$$;

DO $$
DECLARE
    row record;
    previous bytea := '\x0000000000000000000000000000000000000000000000000000000000000000';
BEGIN
    FOR row IN SELECT * FROM ledger_events ORDER BY notification_id LOOP
        previous := sha256(previous || event_hash(
            row.notification_id, row.originator_id, row.originator_version, row.topic, row.state
        ));
        UPDATE ledger_events SET link = previous WHERE notification_id = row.notification_id;
    END LOOP;
END
$$;

ALTER TABLE ledger_events ALTER COLUMN link SET NOT NULL;

CREATE TRIGGER ledger_events_chain BEFORE INSERT ON ledger_events
FOR EACH ROW EXECUTE FUNCTION chain_link();

CREATE TABLE chain_checkpoints (
    notification_id bigint PRIMARY KEY,
    link bytea NOT NULL,
    made_at timestamptz NOT NULL,
    signature bytea NOT NULL
);
