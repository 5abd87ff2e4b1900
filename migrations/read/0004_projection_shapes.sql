-- The shape of each read model's serving generation and of the one being built: the
-- version of what a generation stores (ReadModel.shape), bumped by a release that changes
-- it. Reads refuse a serving generation of another shape than the code's, and
-- `loyalty projections run` rebuilds one of an older shape. Generations built before
-- shapes were recorded are shape 1.
ALTER TABLE projections ADD COLUMN IF NOT EXISTS shape integer NOT NULL DEFAULT 1;
ALTER TABLE projections ADD COLUMN IF NOT EXISTS building_shape integer;
