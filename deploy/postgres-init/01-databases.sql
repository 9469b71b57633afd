-- Runs once, when the postgres container starts on an empty data volume
-- (docker-entrypoint-initdb.d). One database and one owning role per service;
-- add a block here when a service (chat, billing, analytics) gets a database.
-- Development credentials only.

CREATE ROLE identity LOGIN PASSWORD 'identity';
CREATE DATABASE identity OWNER identity;
