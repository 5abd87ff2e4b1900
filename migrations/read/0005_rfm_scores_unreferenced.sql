-- An RFM run's scores are written with the run, in the same transaction, by one function
-- (loyalty.projections.rfm_runs.store_run): the foreign key to rfm_runs guarded nothing
-- that transaction does not, and its check, one per row, took half of storing a million
-- customers' scores (3.7 s of 7.5 s).
ALTER TABLE rfm_scores DROP CONSTRAINT IF EXISTS rfm_scores_run_id_fkey;
