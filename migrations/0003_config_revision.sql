-- A counter bumped in the same transaction as any change to the program (network,
-- campaigns, promotions, clusters), so that writers know when to reload it, and a
-- registry of the program's streams so that they can be found without scanning the log.
CREATE TABLE config_revision (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    revision bigint NOT NULL
);
INSERT INTO config_revision (id, revision) VALUES (true, 0);

CREATE TABLE config_streams (
    originator_id uuid PRIMARY KEY,
    kind text NOT NULL
);
