-- Each migration also appends to applied, so tests can see that it ran once.
CREATE TABLE applied (version integer NOT NULL);
INSERT INTO applied VALUES (1);
CREATE TABLE users (
	id   bigint PRIMARY KEY,
	name text   NOT NULL
);
