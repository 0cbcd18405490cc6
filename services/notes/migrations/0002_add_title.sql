-- Expand: a defaulted column, readable by code that does not know it yet.
ALTER TABLE notes ADD COLUMN title text NOT NULL DEFAULT '';
