INSERT INTO applied VALUES (2);
CREATE TABLE orders (
	id      bigint PRIMARY KEY,
	user_id bigint NOT NULL REFERENCES users (id)
);
CREATE INDEX orders_user_id ON orders (user_id);
