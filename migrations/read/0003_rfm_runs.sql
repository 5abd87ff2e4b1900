-- RFM runs: each run's parameters and the scores it gave every customer it scored.
-- A run is immutable: computed once from the revenue facts up to a log position.
CREATE TABLE IF NOT EXISTS rfm_runs (
    run_id uuid PRIMARY KEY,
    as_of date NOT NULL,
    parameters jsonb NOT NULL,
    position bigint NOT NULL,
    previous uuid,
    customers integer NOT NULL,
    sizes jsonb NOT NULL,
    digest text NOT NULL,
    computed_by text NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS rfm_scores (
    run_id uuid NOT NULL REFERENCES rfm_runs (run_id),
    customer_id uuid NOT NULL,
    recency_days integer NOT NULL,
    frequency integer NOT NULL,
    monetary numeric NOT NULL,
    r smallint NOT NULL,
    f smallint NOT NULL,
    m smallint NOT NULL,
    fm smallint NOT NULL,
    segment text NOT NULL,
    PRIMARY KEY (run_id, customer_id)
);

CREATE INDEX IF NOT EXISTS rfm_scores_segment ON rfm_scores (run_id, segment, customer_id);
