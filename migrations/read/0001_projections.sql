-- The read side's registry: which generation of each projection's tables serves reads.
-- A rebuild fills generation N+1 while N keeps serving, then swaps them in one UPDATE.
CREATE TABLE IF NOT EXISTS projections (
    name text PRIMARY KEY,
    generation integer NOT NULL,
    building integer,
    swapped_at timestamptz NOT NULL DEFAULT now()
);
