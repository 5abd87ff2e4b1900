-- Cluster memberships (issue 6), written by the evaluation of each cluster
-- (loyalty.commands.memberships), whose trail is in the ledger (ClusterMembership.Evaluated).
-- Only ids and store codes: nothing personal is ever kept here.

-- Every evaluation: the version judged, the day, how many were in, joined and left.
CREATE TABLE IF NOT EXISTS cluster_evaluations (
    cluster text NOT NULL,
    version integer NOT NULL,
    evaluated_on date NOT NULL,
    evaluated_at timestamptz NOT NULL,
    membership text NOT NULL CHECK (membership IN ('dynamic', 'static')),
    size integer NOT NULL,
    joined integer NOT NULL,
    departed integer NOT NULL,
    members_digest text NOT NULL,
    PRIMARY KEY (cluster, version, evaluated_on)
);

-- The members found by each cluster's latest evaluation, with their home store (the
-- store that puts them in a scoped operator's reach; none for customers without one).
CREATE TABLE IF NOT EXISTS cluster_members (
    cluster text NOT NULL,
    customer_id uuid NOT NULL,
    home_store text,
    PRIMARY KEY (cluster, customer_id)
);

CREATE INDEX IF NOT EXISTS cluster_members_customer_idx ON cluster_members (customer_id);
CREATE INDEX IF NOT EXISTS cluster_members_store_idx ON cluster_members (cluster, home_store);
