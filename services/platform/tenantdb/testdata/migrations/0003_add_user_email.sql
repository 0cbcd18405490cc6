INSERT INTO applied VALUES (3);
ALTER TABLE users ADD COLUMN email text;
